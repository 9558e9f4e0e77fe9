"""`durable-ext start`: serve a function app locally, like `func start`, with the durable worker.

Reads host.json and local.settings.json, starts Azurite for `UseDevelopmentStorage=true` when
nothing answers, runs the worker, serves the app's HTTP functions under `/{routePrefix}/...` (the
management functions `DFApp` registers among them) and the same management API under
`/runtime/webhooks/durabletask` for tools that build DF URLs themselves, and stops cleanly on
Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from azure.functions import FunctionRegister

from .. import app as app_module
from ..azure_monitor import export_to_azure_monitor
from ..client import WEBHOOK_PATH, DurableOrchestrationClient, management_function_path
from ..dashboard.assets import DASHBOARD_SETTING, DashboardMode, dashboard_mode
from ..http_api import (
    RAISE_READS_ONCE_SETTING,
    SETTINGS_ONCE_SETTING,
    ApiLevers,
    create_management_routes,
    set_levers,
)
from ..management_functions import (
    DASHBOARD_FUNCTION,
    MANAGEMENT_FUNCTIONS,
    set_host_keys,
    set_open_without_key,
)
from ..runtime import Runtime, registry_of
from ..settings import (
    DurableTaskSettings,
    SettingsError,
    app_settings,
    effective_host_json,
    get_app_setting,
    load_durable_task_settings,
    load_host_json,
    load_http_settings,
    load_local_settings,
    load_log_levels,
)
from ..storage.connection import StorageConnection, development_storage_ports
from ..worker.options import WorkerOptions
from .app_loader import AppLoadError, load_app
from .azurite import AzuriteNotFoundError, ensure_azurite
from .console_log import configure_console
from .http_functions import (
    FunctionKeys,
    add_http_functions,
    http_functions,
    not_found_for_other_methods,
)
from .log_levels import apply_log_levels

__all__ = ["run", "LocalHostConfig", "load_config", "api_levers"]

log = logging.getLogger("durable_ext.host")


@dataclass
class LocalHostConfig:
    """Everything `durable-ext start` reads from the app root."""

    app_root: Path
    values: dict[str, str]
    host_json: dict[str, object]


def load_config(app_root: Path) -> LocalHostConfig:
    """Read host.json and local.settings.json (environment variables override Values); the
    host.json is the effective one, with the `AzureFunctionsJobHost__*` app settings applied."""
    values = app_settings(load_local_settings(app_root / "local.settings.json"))
    host_json = effective_host_json(load_host_json(app_root / "host.json"), values)
    return LocalHostConfig(app_root, values, host_json)


def api_levers(values: dict[str, str]) -> ApiLevers:
    """The management API's levers from the app settings (each on unless set to `false`)."""

    def on(name: str) -> bool:
        return (get_app_setting(values, name) or "true").strip().lower() != "false"

    return ApiLevers(
        raise_reads_once=on(RAISE_READS_ONCE_SETTING), settings_once=on(SETTINGS_ONCE_SETTING)
    )


def _console_level(args: argparse.Namespace) -> int | None:
    """The level `--verbose` or `--quiet` asks for (None: host.json's `logging.logLevel`)."""
    if getattr(args, "verbose", False):
        return logging.DEBUG
    if getattr(args, "quiet", False):
        return logging.WARNING
    return None


def run(args: argparse.Namespace) -> int:
    """Entry point of `durable-ext start`; returns the exit code."""
    chosen = _console_level(args)
    configure_console(chosen or logging.INFO)
    app_root = Path(getattr(args, "app_root", None) or ".").resolve()
    try:
        config = load_config(app_root)
        if chosen is None:
            apply_log_levels(load_log_levels(config.host_json, config.values), include_default=True)
        for name, value in config.values.items():  # as func start: the app sees them in os.environ
            os.environ.setdefault(name, value)
        durable = load_durable_task_settings(config.host_json, config.values)
        http = load_http_settings(config.host_json, config.values)
        connection = StorageConnection.from_app_settings(durable.connection_name, config.values)
        set_levers(api_levers(config.values))
        application = load_app(app_root)
    except (SettingsError, AppLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    export_to_azure_monitor()  # after the app's import: it may have configured OpenTelemetry
    try:
        return asyncio.run(
            _serve(args, config, durable, http.route_prefix, connection, application)
        )
    except (AzuriteNotFoundError, SettingsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _serve(
    args: argparse.Namespace,
    config: LocalHostConfig,
    durable: DurableTaskSettings,
    route_prefix: str,
    connection: StorageConnection,
    application: FunctionRegister,
) -> int:
    azurite: subprocess.Popen[bytes] | None = None
    ports = development_storage_ports(connection)
    if ports is not None:
        azurite = await ensure_azurite(config.app_root, ports)
        if azurite is not None:
            print(f"Started Azurite (pid {azurite.pid}) for development storage")
    system_key = get_app_setting(config.values, "DURABLE_EXT_SYSTEM_KEY")
    keys = FunctionKeys(
        function_key=get_app_setting(config.values, "DURABLE_EXT_FUNCTION_KEY"),
        master_key=get_app_setting(config.values, "DURABLE_EXT_MASTER_KEY"),
    )
    runtime = Runtime(
        application,
        connection=connection,
        hub=durable.hub_name,
        options=WorkerOptions.from_settings(durable),
        connection_name=durable.connection_name.removeprefix("AzureWebJobs"),
        system_key=system_key,
        management_path=management_function_path(route_prefix),
    )
    try:
        if api_levers(config.values).settings_once:
            set_host_keys((system_key, keys.master_key))
        async with runtime:
            return await _serve_http(args, application, runtime, route_prefix, keys, system_key)
    finally:
        app_module.set_client_provider(None)
        set_open_without_key(False)
        set_host_keys(None)
        if azurite is not None:
            azurite.terminate()
            azurite.wait(10)


def _dashboard_line(api_base: str, system_key: str | None) -> str:
    """The banner's word on the dashboard: its URL, or why it is not served."""
    try:
        mode = dashboard_mode(os.environ)
    except ValueError as exc:
        return f"not served: {exc}"
    if mode is DashboardMode.DISABLED:
        return f"disabled ({DASHBOARD_SETTING})"
    notes = [" (read-only)" if mode is DashboardMode.READ_ONLY else ""]
    notes.append(" (it asks for the system key)" if system_key else "")
    return f"{api_base}/dashboard/" + "".join(notes)


async def _serve_http(
    args: argparse.Namespace,
    application: FunctionRegister,
    runtime: Runtime,
    route_prefix: str,
    keys: FunctionKeys,
    system_key: str | None,
) -> int:
    client = runtime.client

    async def provide(
        _owner: object, task_hub: str | None, connection: str | None
    ) -> DurableOrchestrationClient:
        return await runtime.hub_clients.get(task_hub, connection)

    app_module.set_client_provider(provide)
    set_open_without_key(True)
    web_app = web.Application(
        client_max_size=64 * 1024 * 1024, middlewares=[not_found_for_other_methods(WEBHOOK_PATH)]
    )
    served = add_http_functions(
        web_app, http_functions(application.get_functions()), route_prefix, keys
    )

    def client_for(task_hub: str | None) -> DurableOrchestrationClient:
        if task_hub and task_hub.lower() != runtime.hub.names.hub.lower():
            raise LookupError(task_hub)
        return client

    management = create_management_routes(
        client_for,
        system_key=system_key,
        master_key=keys.master_key,
        default_connection=client.connection_name,
        orchestrator_names=lambda: registry_of(application).orchestrator_names,
    )
    web_app.add_subapp(WEBHOOK_PATH, management)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    base = f"http://{args.host}:{args.port}"
    registry = registry_of(application)
    print(
        f"\nFunctions ({len(registry.orchestrator_names)} orchestrators, "
        f"{len(registry.activity_names)} activities, {len(registry.entity_names)} entities "
        f"on hub {runtime.hub.names.hub}):\n"
    )
    management_names = {name for name, *_ in MANAGEMENT_FUNCTIONS} | {DASHBOARD_FUNCTION}
    for fn, path in served:
        if fn.name not in management_names:
            print(f"        {fn.name}: [{','.join(fn.methods)}] {base}{path}")
    print(
        f"\n        Management API: {base}{management_function_path(route_prefix)}/instances"
        f" (also {base}{WEBHOOK_PATH}/instances)"
        f"\n        Dashboard: {_dashboard_line(base + management_function_path(route_prefix), system_key)}\n",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("Stopping...", flush=True)
        await runner.cleanup()
    return 0
