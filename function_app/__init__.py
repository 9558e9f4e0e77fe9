"""The sample function app: one blueprint per Durable Functions pattern.

| Module | Pattern | Start it with |
|---|---|---|
| chaining | function chaining | `POST /api/orchestrators/hello_sequence` |
| fan_out_fan_in | fan-out/fan-in | `POST /api/orchestrators/fan_out_fan_in` |
| async_http_api | the HTTP starters and status polling | (the routes above) |
| monitor | polling with durable timers | `POST /api/orchestrators/job_monitor` |
| human_interaction | approval event vs timeout | `POST /api/orchestrators/approval_workflow` |
| eternal | periodic singleton with continue_as_new | `POST /api/cleanup` |
| error_handling | retries and compensation | `POST /api/orchestrators/transfer_funds` |
| counter_entity | the SDK's counter entity sample | `POST /api/orchestrators/counter_orchestration` |
| bank_accounts | class-based entities and a critical section | `POST /api/orchestrators/transfer` |

Run it with `durable-ext start` (or `make run`) in the repository root.
"""

import os

import azure.functions as func

import durable_ext as df

from . import (
    async_http_api,
    bank_accounts,
    chaining,
    counter_entity,
    error_handling,
    eternal,
    fan_out_fan_in,
    human_interaction,
    monitor,
)

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for pattern in (
    async_http_api,
    chaining,
    fan_out_fan_in,
    monitor,
    human_interaction,
    eternal,
    error_handling,
    counter_entity,
    bank_accounts,
):
    app.register_functions(pattern.bp)

# In Azure there is no `durable-ext start`: the worker runs inside the Python worker process.
# Starting it at import (rather than on the first durable-client call or heartbeat) keeps timers
# and eternal orchestrations running without HTTP traffic. It returns at once and never raises:
# the engine starts in the background and retries (see docs/azure.md). The Functions host sets
# AzureWebJobsScriptRoot.
if os.environ.get("AzureWebJobsScriptRoot"):  # noqa: SIM112 - the host's own spelling
    from durable_ext.host.embedded import start_embedded

    start_embedded(app)
