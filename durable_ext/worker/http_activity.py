"""The built-in HTTP activity (`BuiltIn::HttpActivity`) behind `context.call_http`.

It makes one request, as the Durable Functions extension's `TaskHttpActivityShim` does: the
request's headers (its `Content-Type` applies to the content, `text/plain` by default), a
`Authorization: Bearer` token when it names a token source, and the answer as
`{"statusCode", "headers", "content"}` whatever its status. Only a request that cannot be made
(connection refused, name not found, timeout) fails the activity. Polling a 202 is the
orchestration's business (orchestration/durable_http.py), with durable timers in between.

Tokens come from azure-identity (DefaultAzureCredential, which is the app's managed identity in
Azure), one credential per worker, so its token cache is shared.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["HttpActivity", "CredentialFactory"]

CredentialFactory = Callable[[], AsyncTokenCredential]
_TIMEOUT = aiohttp.ClientTimeout(total=100)
"""As .NET's HttpClient default: a request that takes longer fails the activity."""
_WELL_KNOWN_RESOURCES = {
    "https://management.core.windows.net": "https://management.core.windows.net/.default",
    "https://graph.microsoft.com": "https://graph.microsoft.com/.default",
}


def _default_credential() -> AsyncTokenCredential:
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


def token_scope(resource: str) -> str:
    """The scope azure-identity is asked for: the resource, as the extension maps it."""
    return _WELL_KNOWN_RESOURCES.get(resource.rstrip("/"), resource)


def _request(text: str | None) -> dict[str, Any]:
    value = json.loads(text or "null")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict) or not value.get("uri"):
        raise ValueError("the built-in HTTP activity needs a request with a 'uri'")
    return value


class HttpActivity:
    """Runs durable HTTP requests for one worker: one aiohttp session, one credential."""

    def __init__(self, credential: CredentialFactory | None = None) -> None:
        self._make_credential = credential or _default_credential
        self._credential: AsyncTokenCredential | None = None
        self._session: aiohttp.ClientSession | None = None

    async def run(self, input_text: str | None) -> str:
        """Make the request in `input_text` (the activity input); the response as JSON text."""
        request = _request(input_text)
        headers: dict[str, str] = {}
        content_type = "text/plain"
        for name, value in (request.get("headers") or {}).items():
            text = ", ".join(value) if isinstance(value, list) else str(value)
            if name.lower() == "content-type":
                if "multipart" in text:
                    raise ValueError("Multipart content is not supported with call_http.")
                content_type = text
            else:
                headers[name] = text
        content = request.get("content")
        if content is not None:
            headers["Content-Type"] = content_type
        source = request.get("tokenSource")
        if source:
            headers["Authorization"] = f"Bearer {await self._token(source)}"
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        async with session.request(
            str(request.get("method") or "GET"),
            str(request["uri"]),
            data=None if content is None else str(content).encode("utf-8"),
            headers=headers,
            allow_redirects=True,
        ) as response:
            body = await response.text(errors="replace")
            answer: dict[str, Any] = {}
            for name in response.headers:
                values = response.headers.getall(name)
                answer[name] = values[0] if len(values) == 1 else list(values)
            return json.dumps({"statusCode": response.status, "headers": answer, "content": body})

    async def _token(self, source: dict[str, Any]) -> str:
        kind = source.get("kind")
        if kind != "AzureManagedIdentity":
            raise ValueError(f"The token source kind '{kind}' is not supported.")
        if self._credential is None:
            self._credential = self._make_credential()
        token = await self._credential.get_token(token_scope(str(source.get("resource") or "")))
        return token.token

    async def close(self) -> None:
        """Close the session and the credential."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._credential is not None:
            await self._credential.close()
            self._credential = None
