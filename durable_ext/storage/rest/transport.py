"""One service endpoint over aiohttp: authorised requests, bounded retries, SDK-style errors."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from yarl import URL

from ..client_options import DEFAULT_REST_RETRY_DELAYS, RequestObserver
from ..partition_ownership import check_ownership
from .auth import Authorizer

__all__ = [
    "RestTransport",
    "RestResponse",
    "RequestObserver",
    "quote_path",
    "error_from_response",
]

RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CONNECT_TIMEOUT = 20.0
READ_TIMEOUT = 60.0
_XML_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_ERRORS: dict[int, type[HttpResponseError]] = {
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    412: ResourceModifiedError,
}
# Like the SDKs, a rejected signature or token is a ClientAuthenticationError (by error code).
_AUTHENTICATION_CODES = frozenset({"AuthenticationFailed", "InvalidAuthenticationInfo"})


"""Called after each HTTP attempt with method, URL, status, seconds taken and response body."""


def quote_path(segment: str) -> str:
    """A path segment percent-encoded the way storage expects (and signs)."""
    return quote(segment, safe="()',=$")


@dataclass(frozen=True, slots=True)
class RestResponse:
    """Status, headers (names lower-cased) and body of an answer."""

    status: int
    headers: dict[str, str]
    body: bytes


class RestTransport:
    """Requests to one service endpoint (e.g. `http://127.0.0.1:10001/devstoreaccount1`).

    The aiohttp session is created on first use, in the calling event loop; `close()` it.
    """

    def __init__(
        self,
        endpoint: str,
        authorizer: Authorizer,
        api_version: str,
        observer: RequestObserver | None = None,
        *,
        retry_delays: tuple[float, ...] | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        parts = urlsplit(endpoint.rstrip("/"))
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path
        self._authorizer = authorizer
        self._api_version = api_version
        self._observer = observer
        self._retry_delays = DEFAULT_REST_RETRY_DELAYS if retry_delays is None else retry_delays
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
            sock_read=READ_TIMEOUT if read_timeout is None else read_timeout,
        )
        self._proxy = _proxy_for(parts.scheme, parts.hostname or "")
        self._session: aiohttp.ClientSession | None = None
        self._date = ("", 0.0)

    @property
    def endpoint(self) -> str:
        return self._origin + self._base_path

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type", "Accept-Encoding"),
            )
        return self._session

    def _now(self) -> str:
        """The RFC 1123 date, formatted at most once a second."""
        loop_time = asyncio.get_running_loop().time()
        text, at = self._date
        if loop_time - at >= 0.5:
            text = formatdate(usegmt=True)
            self._date = (text, loop_time)
        return text

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        expect: tuple[int, ...] = (200, 201, 202, 204),
    ) -> RestResponse:
        """Send `method path` (path relative to the endpoint, already percent-encoded).

        Connection failures and 408/429/5xx answers are retried a few times with a short back-off;
        then ServiceRequestError / ServiceResponseError / HttpResponseError are raised as the SDK
        would (404 ResourceNotFoundError, 409 ResourceExistsError, 412 ResourceModifiedError).
        """
        full_path = self._base_path + path
        delays = self._retry_delays
        for attempt in range(len(delays) + 1):
            last = attempt == len(delays)
            try:
                response = await self._send(method, full_path, dict(query or {}), headers, body)
            except (aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
                if last:
                    kind: type[AzureError] = ServiceRequestError
                    if not isinstance(exc, aiohttp.ClientConnectorError):
                        kind = ServiceResponseError
                    raise kind(f"{method} {self.endpoint}: {type(exc).__name__}: {exc}") from exc
            else:
                if response.status in expect:
                    return response
                if last or response.status not in RETRIED_STATUSES:
                    raise error_from_response(method, response)
            await asyncio.sleep(delays[attempt])
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        full_path: str,
        query: dict[str, str],
        extra_headers: dict[str, str] | None,
        body: bytes,
    ) -> RestResponse:
        headers = {"x-ms-date": self._now(), "x-ms-version": self._api_version}
        if extra_headers:
            headers.update(extra_headers)
        await self._authorizer.authorize(method, full_path, query, headers, len(body))
        check_ownership()  # each attempt, right before it goes out (partition_ownership)
        url = self._origin + full_path
        if query:
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        started = time.perf_counter()
        async with self._http().request(
            method, URL(url, encoded=True), headers=headers, data=body or None, proxy=self._proxy
        ) as response:
            data = await response.read()
            if self._observer is not None:
                self._observer(method, url, response.status, time.perf_counter() - started, data)
            return RestResponse(
                response.status, {k.lower(): v for k, v in response.headers.items()}, data
            )


def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy that HTTP(S)_PROXY / NO_PROXY name for the endpoint, as the SDK's transport
    honours them (read once: aiohttp's per-request `trust_env` lookup doubles the CPU per call)."""
    if proxy_bypass(host):
        return None
    return getproxies_environment().get(scheme)


def error_from_response(method: str, response: RestResponse) -> HttpResponseError:
    code = response.headers.get("x-ms-error-code", "")
    message = ""
    body = response.body
    if body.startswith(b"{"):
        try:
            error: Any = json.loads(body).get("odata.error", {})
            code = code or str(error.get("code", ""))
            message = str(error.get("message", {}).get("value", ""))
        except (ValueError, AttributeError):
            pass
    else:
        found = _XML_CODE.search(body)
        if found and not code:
            code = found.group(1).decode(errors="replace")
        found = _XML_MESSAGE.search(body)
        if found:
            message = found.group(1).decode(errors="replace")
    kind = _ERRORS.get(response.status, HttpResponseError)
    if code in _AUTHENTICATION_CODES:
        kind = ClientAuthenticationError
    summary = message.splitlines()[0] if message else ""
    exc = kind(message=f"{response.status} {code}: {summary}".strip(": "))
    exc.status_code = response.status
    exc.reason = code or None
    exc.error_code = code or None  # type: ignore[attr-defined]
    return exc
