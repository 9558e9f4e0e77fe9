"""Serve an app's HTTP-triggered functions with `azure.functions` request/response semantics."""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.decorators.function_app import Function

from .engine_functions import HEARTBEAT_FUNCTION
from .route_templates import aiohttp_paths, route_values
from .wake_up import WAKE_UP_FUNCTION

__all__ = ["HttpFunction", "http_functions", "add_http_functions", "FunctionKeys"]

log = logging.getLogger("durable_ext.host")
_ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")


@dataclass(frozen=True, slots=True)
class FunctionKeys:
    """Keys for `function` and `admin` auth levels; None means the level is open (local default)."""

    function_key: str | None = None
    master_key: str | None = None

    def allows(self, auth_level: str, presented: str | None) -> bool:
        """Whether a request presenting `presented` may call a function of `auth_level`."""
        if auth_level == "anonymous":
            return True
        candidates = (
            [self.master_key] if auth_level == "admin" else [self.function_key, self.master_key]
        )
        keys = [k for k in candidates if k]
        if not keys:
            return True
        return presented is not None and any(
            hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), k.encode())
            for k in keys
        )


@dataclass(frozen=True, slots=True)
class HttpFunction:
    """An HTTP-triggered function of the app."""

    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: str
    trigger_name: str
    function: Function


AZURE_ONLY_FUNCTIONS = frozenset({HEARTBEAT_FUNCTION, WAKE_UP_FUNCTION})
"""The engine's own non-HTTP functions (`DFApp` registers them): nothing to run locally."""


def http_functions(functions: list[Function]) -> list[HttpFunction]:
    """The HTTP functions among the app's functions (others are logged and skipped)."""
    found = []
    for function in functions:
        trigger = function.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            name = function.get_function_name()
            if name in AZURE_ONLY_FUNCTIONS:  # the local host runs the engine itself
                log.debug("Function %s keeps the engine alive in Azure only", name)
                continue
            log.warning(
                "Function %s (%s) is not run by the local host",
                name,
                trigger.get_binding_name() if trigger else "no trigger",
            )
            continue
        name = function.get_function_name() or function.get_user_function().__name__
        settings: Any = trigger
        methods = tuple(
            str(getattr(m, "value", m)).upper() for m in (settings.methods or _ALL_METHODS)
        )
        level = str(
            getattr(settings.auth_level, "value", settings.auth_level or "function")
        ).lower()
        found.append(
            HttpFunction(name, str(settings.route or name), methods, level, trigger.name, function)
        )
    return found


class _Context:
    """The `context` argument functions may declare."""

    def __init__(self, function_name: str) -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_directory = ""
        self.trace_context = None
        self.retry_context = None


def _first_values(items: Mapping[str, str] | Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in items.items():
        out.setdefault(key, value)
    return out


def _to_aiohttp(result: Any) -> web.Response:
    if isinstance(result, web.StreamResponse):
        return result  # type: ignore[return-value]
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers)
        headers.pop("Content-Length", None)
        content_type = headers.pop("Content-Type", None) or result.mimetype
        return web.Response(
            body=result.get_body(),
            status=result.status_code,
            headers=headers,
            content_type=content_type.split(";")[0] if content_type else None,
            charset=result.charset if content_type and content_type.startswith("text") else None,
        )
    if result is None:
        return web.Response(status=204)
    if isinstance(result, bytes):
        return web.Response(body=result)
    return web.Response(text=str(result))


def _handler(fn: HttpFunction, keys: FunctionKeys) -> Any:
    user_function = fn.function.get_user_function()
    parameters = inspect.signature(user_function).parameters

    async def handle(request: web.Request) -> web.StreamResponse:
        presented = request.query.get("code") or request.headers.get("x-functions-key")
        if not keys.allows(fn.auth_level, presented):
            return web.json_response(
                {"error": "Unauthorized: a valid function key is required"}, status=401
            )
        body = await request.read()
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=_first_values(request.query),
            route_params=route_values(dict(request.match_info)),
            body=body,
        )
        kwargs: dict[str, Any] = {fn.trigger_name: http_request}
        if "context" in parameters:
            kwargs["context"] = _Context(fn.name)
        try:
            if inspect.iscoroutinefunction(user_function):
                result = await user_function(**kwargs)
            else:
                result = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: user_function(**kwargs)
                )
                if inspect.isawaitable(result):
                    result = await result
        except Exception:  # the host answers 500 like Azure Functions does
            log.exception("Function %s failed", fn.name)
            return web.json_response(
                {"error": f"Function '{fn.name}' failed; see the host log."}, status=500
            )
        return _to_aiohttp(result)

    return handle


def not_found_for_other_methods(exempt: str) -> Any:
    """Middleware: a function route asked with a method it does not take is not found (404,
    empty), as in the Functions host, where aiohttp would answer 405. Paths under `exempt` (the
    management webhooks, which answer for themselves) are left alone."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed:
            if request.path.startswith(exempt):
                raise
            return web.Response(status=404)

    return middleware


def add_http_functions(
    app: web.Application, functions: list[HttpFunction], route_prefix: str, keys: FunctionKeys
) -> list[tuple[HttpFunction, str]]:
    """Add routes for every HTTP function; returns (function, path) pairs for the start banner.
    Routes match in any case, as the Functions host's do; `not_found_for_other_methods` gives
    its answer to a wrong method."""
    served = []
    for fn in functions:
        handler = _handler(fn, keys)
        for path in aiohttp_paths(route_prefix, fn.route):
            for method in fn.methods:
                app.router.add_route(method, path, handler, name=None)
        prefix = "/".join(p for p in (route_prefix.strip("/"), fn.route.strip("/")) if p)
        served.append((fn, "/" + prefix))
    return served
