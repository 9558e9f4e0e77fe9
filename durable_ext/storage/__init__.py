"""Azure Storage provider: the DTFx task-hub layout in queues, tables and blobs."""
