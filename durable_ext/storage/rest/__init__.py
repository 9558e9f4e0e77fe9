"""A lean REST path for the hot data-plane calls (queue messages, table rows).

The Azure SDK spends about 1.1 ms of CPU per request in its pipeline (policies, generated
serializers, models); the same request built here costs about 0.2 ms. The engine's hot loop makes
several requests per activity, so it goes through this package, while everything else (creating and
deleting queues, tables and containers, leases, blobs, listing queries) stays on the SDK. Requests
are authorised the same three ways as the SDK's (account key, SAS, Microsoft Entra token), failures
raise the same `azure.core` exception types, and the bytes stored are the ones the SDK would store.
"""
