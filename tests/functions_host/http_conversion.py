"""HTTP in and out as host and worker convert it (`ToRpcHttp`, `HttpRequestConverter`,
`HttpResponseConverter`, the host's `HttpBinding`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from aiohttp import web

__all__ = ["to_http_request", "HttpResult", "from_return_value", "ConversionError"]


class ConversionError(TypeError):
    """A return value the HTTP output binding cannot encode (the invocation fails: 500)."""


@dataclass(frozen=True)
class HttpResult:
    """The response the host sends."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def to_aiohttp(self) -> web.Response:
        """The aiohttp response (headers kept as given, Content-Length computed)."""
        response = web.Response(status=self.status, body=self.body)
        response.headers.popall("Content-Type", None)
        for name, value in self.headers:
            if name.lower() != "content-length":
                response.headers.add(name, value)
        return response


def _joined(items: Any) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        if value != "":
            out.setdefault(key, []).append(value)
    return {key: ",".join(values) for key, values in out.items()}


async def to_http_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    """url = scheme+host+path+query; headers lower-cased, multi-values comma-joined, empty ones
    dropped; params = query without empty values; body empty unless Content-Length > 0."""
    body = await request.read() if (request.content_length or 0) > 0 else b""
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=_joined((k.lower(), v) for k, v in request.headers.items()),
        params=_joined(request.query.items()),
        route_params=dict(route_params),
        body=body,
    )


def _from_json_shape(text: str) -> HttpResult | None:
    """The host reads a string that is a JSON object with `body` as {statusCode, headers, body}."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or "body" not in document:
        return None
    status = int(document.get("statusCode") or document.get("status") or 200)
    headers = [(str(k), str(v)) for k, v in (document.get("headers") or {}).items()]
    body = document["body"]
    data = body if isinstance(body, str) else json.dumps(body)
    return HttpResult(status, headers, data.encode())


def from_return_value(value: Any) -> HttpResult:
    """An `HttpResponse` or a `str` (anything else cannot be encoded by the http binding)."""
    if isinstance(value, str):
        return _from_json_shape(value) or HttpResult(
            200, [("content-type", "text/plain; charset=utf-8")], value.encode()
        )
    if isinstance(value, func.HttpResponse):
        headers = [(k, v) for k, v in value.headers.items()]
        if not any(k.lower() == "content-type" for k, _ in headers):
            mimetype = value.mimetype
            headers.append(
                (
                    "content-type",
                    f"{mimetype}; charset={value.charset}"
                    if mimetype.startswith("text/")
                    else mimetype,
                )
            )
        return HttpResult(value.status_code, headers, value.get_body() or b"")
    raise ConversionError(
        f'unable to encode outgoing TypedData: unsupported type "{type(value).__name__}" for '
        'Python type "http"'
    )
