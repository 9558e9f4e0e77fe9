"""Authorising storage requests: Shared Key (queues and tables), SAS, or a Microsoft Entra token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import MutableMapping
from typing import Literal, Protocol
from urllib.parse import parse_qsl

from azure.core.credentials import AccessToken, AzureNamedKeyCredential, AzureSasCredential
from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["Authorizer", "authorizer_for", "STORAGE_SCOPE"]

STORAGE_SCOPE = "https://storage.azure.com/.default"
_TOKEN_REFRESH_MARGIN = 300
ServiceKind = Literal["queue", "table"]


class Authorizer(Protocol):
    """Adds what authorises one request: headers and/or query parameters."""

    async def authorize(
        self,
        method: str,
        path: str,
        query: MutableMapping[str, str],
        headers: MutableMapping[str, str],
        content_length: int,
    ) -> None: ...


class SharedKeyAuthorizer:
    """`Authorization: SharedKey account:signature` over the service's string-to-sign."""

    def __init__(self, account_name: str, account_key: str, service: ServiceKind) -> None:
        self._account = account_name
        self._key = base64.b64decode(account_key)
        self._service = service

    async def authorize(
        self,
        method: str,
        path: str,
        query: MutableMapping[str, str],
        headers: MutableMapping[str, str],
        content_length: int,
    ) -> None:
        resource = f"/{self._account}{path}"
        if self._service == "table":
            comp = query.get("comp")
            to_sign = "\n".join(
                (
                    method,
                    headers.get("Content-MD5", ""),
                    headers.get("Content-Type", ""),
                    headers["x-ms-date"],
                    resource + (f"?comp={comp}" if comp else ""),
                )
            )
        else:
            canonical_headers = "".join(
                f"{name}:{value}\n"
                for name, value in sorted(
                    (k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-ms-")
                )
            )
            canonical_query = "".join(
                f"\n{name}:{value}"
                for name, value in sorted((k.lower(), v) for k, v in query.items())
            )
            to_sign = (
                f"{method}\n\n\n{content_length or ''}\n\n{headers.get('Content-Type', '')}"
                f"\n\n\n\n\n\n\n{canonical_headers}{resource}{canonical_query}"
            )
        digest = hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {self._account}:{base64.b64encode(digest).decode()}"


class SasAuthorizer:
    """The shared access signature's parameters appended to every query."""

    def __init__(self, token: str) -> None:
        self._parameters = parse_qsl(token.lstrip("?"), keep_blank_values=True)

    async def authorize(
        self,
        method: str,
        path: str,
        query: MutableMapping[str, str],
        headers: MutableMapping[str, str],
        content_length: int,
    ) -> None:
        for name, value in self._parameters:
            query.setdefault(name, value)


class BearerAuthorizer:
    """`Authorization: Bearer` with a token from the credential, renewed 5 minutes before expiry."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self._credential = credential
        self._token: AccessToken | None = None

    async def authorize(
        self,
        method: str,
        path: str,
        query: MutableMapping[str, str],
        headers: MutableMapping[str, str],
        content_length: int,
    ) -> None:
        if self._token is None or self._token.expires_on - _TOKEN_REFRESH_MARGIN < time.time():
            self._token = await self._credential.get_token(STORAGE_SCOPE)
        headers["Authorization"] = f"Bearer {self._token.token}"


def authorizer_for(
    credential: AzureNamedKeyCredential | AzureSasCredential | AsyncTokenCredential,
    service: ServiceKind,
) -> Authorizer:
    """The authorizer that matches a connection's credential."""
    if isinstance(credential, AzureNamedKeyCredential):
        named = credential.named_key
        return SharedKeyAuthorizer(named.name, named.key, service)
    if isinstance(credential, AzureSasCredential):
        return SasAuthorizer(credential.signature)
    return BearerAuthorizer(credential)
