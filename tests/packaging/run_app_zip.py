"""Run an unpacked deployable zip through the fake Functions host (the child of check_app_zip).

python -m tests.packaging.run_app_zip APP_DIR CONNECTION_STRING, in a venv without packages and
with APP_DIR/.python_packages/lib/site-packages first on PYTHONPATH. Prints a JSON line: the
durable_ext version, the indexed functions and the output of `hello_sequence`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import azure.functions

import durable_ext
from tests.functions_host import FakeHost

SITE_PACKAGES = Path(".python_packages/lib/site-packages")


async def run(app_dir: Path, connection_string: str) -> dict[str, object]:
    site = (app_dir / SITE_PACKAGES).resolve()
    for module in (durable_ext, azure.functions, aiohttp):
        origin = Path(module.__file__ or "").resolve()
        assert origin.is_relative_to(site), f"{module.__name__} imported from {origin}, not the zip"
    async with FakeHost(app_dir, app_settings={"AzureWebJobsStorage": connection_string}) as host:
        functions = sorted(fn.name for fn in host.index.functions)
        async with (
            aiohttp.ClientSession() as http,
            http.post(host.url("orchestrators/hello_sequence/wait?timeout=60")) as response,
        ):
            assert response.status == 200, f"{response.status}: {await response.text()}"
            output = await response.json()
    assert output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"], output
    return {"version": durable_ext.__version__, "functions": functions, "output": output}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(Path(sys.argv[1]), sys.argv[2]))))
