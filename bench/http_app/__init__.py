"""The function app the `durable_ext_http` engine serves with `durable-ext start` (this folder is
its app root: host.json here; the connection and task hub come from environment variables)."""
