"""Azure Storage connections, resolved from app settings the way Azure Functions does.

A connection name (`AzureWebJobsStorage` unless host.json says otherwise) refers either to an
app setting holding a connection string, or to a prefix of identity-based settings
(`{name}__accountName`, or `{name}__blobServiceUri`/`__queueServiceUri`/`__tableServiceUri`,
with the credential settings of `identity.py`). `StorageConnection` turns either into endpoints
and a credential, and makes the `aio` clients for blobs, queues and tables.

Secrets (account keys, SAS tokens, whole connection strings) never appear in error
messages, `repr()` or `describe()`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from ..settings import SettingsError, get_app_setting
from .client_options import StorageClientOptions
from .identity import IdentitySettings
from .rest.auth import authorizer_for
from .rest.queue_messages import QUEUE_API_VERSION
from .rest.table_rows import TABLE_API_VERSION
from .rest.transport import RestTransport

__all__ = ["StorageConnection", "development_storage_ports"]

Service = Literal["blob", "queue", "table"]
SERVICES: tuple[Service, ...] = ("blob", "queue", "table")

DEVELOPMENT_ACCOUNT_NAME = "devstoreaccount1"
DEVELOPMENT_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEVELOPMENT_PORTS: dict[Service, int] = {"blob": 10000, "queue": 10001, "table": 10002}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Connection-string keys, lower-cased; anything else is rejected as a likely typo.
_KNOWN_KEYS = frozenset(
    {
        "usedevelopmentstorage",
        "developmentstorageproxyuri",
        "defaultendpointsprotocol",
        "accountname",
        "accountkey",
        "endpointsuffix",
        "sharedaccesssignature",
        "blobendpoint",
        "queueendpoint",
        "tableendpoint",
        "fileendpoint",
        "blobsecondaryendpoint",
        "queuesecondaryendpoint",
        "tablesecondaryendpoint",
        "filesecondaryendpoint",
    }
)

_PLAIN_KEY_RE = re.compile(r"[A-Za-z]{1,30}")

StorageCredential = AzureNamedKeyCredential | AzureSasCredential | AsyncTokenCredential


class StorageConnection:
    """Endpoints and credential of one storage account, from a connection string or from
    identity-based settings. Token credentials are created on first use; `close()` them."""

    def __init__(
        self,
        name: str,
        endpoints: Mapping[Service, str],
        *,
        account_name: str,
        account_key: str | None = None,
        sas_token: str | None = None,
        identity: IdentitySettings | None = None,
        development_storage: bool = False,
    ) -> None:
        self.name = name
        self._endpoints = {service: endpoints[service].rstrip("/") for service in SERVICES}
        self._account_name = account_name
        self._account_key = account_key
        self._sas_token = sas_token
        self._identity = identity or IdentitySettings()
        self._development_storage = development_storage
        self._token_credential: AsyncTokenCredential | None = None
        self.options = StorageClientOptions()
        """Retries, timeouts and request watching of every client this connection makes."""

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_app_settings(cls, name: str, settings: Mapping[str, str]) -> StorageConnection:
        """The connection `name` as Azure Functions resolves it: `AzureWebJobs{name}` or
        `{name}` as a connection string, else `{name}__*` identity-based settings."""
        for candidate in (f"AzureWebJobs{name}", name):
            connection_string = get_app_setting(settings, candidate)
            if connection_string is not None:
                return cls.from_connection_string(connection_string, name=candidate)
            if _has_section(settings, candidate):
                return cls._from_identity_settings(candidate, settings)
        raise SettingsError(
            f"Storage connection {name!r} is not configured: set {name} to a connection "
            f"string, or {name}__accountName for an identity-based connection"
        )

    @classmethod
    def from_connection_string(
        cls, connection_string: str, *, name: str = "AzureWebJobsStorage"
    ) -> StorageConnection:
        """Parse a storage connection string; `name` is the setting it came from (for errors)."""
        values = _parse_connection_string(connection_string, name)
        if "usedevelopmentstorage" in values:
            return cls._from_development_storage(values, name)
        account_name = values.get("accountname")
        account_key = values.get("accountkey")
        sas_token = values.get("sharedaccesssignature")
        if account_key is not None and sas_token is not None:
            raise SettingsError(
                f"Storage connection string {name} has both AccountKey and "
                "SharedAccessSignature; keep one"
            )
        if account_key is None and sas_token is None:
            raise SettingsError(
                f"Storage connection string {name} has no AccountKey or SharedAccessSignature"
            )
        if account_key is not None:
            if account_name is None:
                raise SettingsError(
                    f"Storage connection string {name} has an AccountKey but no AccountName"
                )
            try:
                base64.b64decode(account_key, validate=True)
            except binascii.Error:
                raise SettingsError(
                    f"Storage connection string {name} has an AccountKey that is not valid base64"
                ) from None
        protocol = values.get("defaultendpointsprotocol", "https").lower()
        if protocol not in ("http", "https"):
            raise SettingsError(
                f"Storage connection string {name} has DefaultEndpointsProtocol "
                f"{protocol!r}; use https or http"
            )
        suffix = values.get("endpointsuffix", "core.windows.net")
        endpoints: dict[Service, str] = {}
        for service in SERVICES:
            explicit = values.get(f"{service}endpoint")
            if explicit is not None:
                endpoints[service] = _checked_url(explicit, f"{name}: {service.title()}Endpoint")
            elif account_name is not None:
                endpoints[service] = f"{protocol}://{account_name}.{service}.{suffix}"
        missing = [f"{service.title()}Endpoint" for service in SERVICES if service not in endpoints]
        if missing:
            raise SettingsError(
                f"Storage connection string {name} needs AccountName, or {_join(missing)} "
                "as well (durable_ext uses blobs, queues and tables)"
            )
        return cls(
            name,
            endpoints,
            account_name=account_name or _account_from_url(endpoints["blob"]),
            account_key=account_key,
            sas_token=sas_token.lstrip("?") if sas_token is not None else None,
        )

    @classmethod
    def _from_development_storage(cls, values: Mapping[str, str], name: str) -> StorageConnection:
        """`UseDevelopmentStorage=true[;DevelopmentStorageProxyUri=...]`: the Azurite account."""
        if values["usedevelopmentstorage"].lower() != "true" or set(values) - {
            "usedevelopmentstorage",
            "developmentstorageproxyuri",
        }:
            raise SettingsError(
                f"Storage connection string {name}: UseDevelopmentStorage must be 'true' and may "
                "only be combined with DevelopmentStorageProxyUri"
            )
        proxy = values.get("developmentstorageproxyuri", "http://127.0.0.1")
        base = urlsplit(_checked_url(proxy, f"{name}: DevelopmentStorageProxyUri"))
        host = f"[{base.hostname}]" if ":" in (base.hostname or "") else base.hostname
        endpoints: dict[Service, str] = {
            service: f"{base.scheme}://{host}:{port}/{DEVELOPMENT_ACCOUNT_NAME}"
            for service, port in DEVELOPMENT_PORTS.items()
        }
        return cls(
            name,
            endpoints,
            account_name=DEVELOPMENT_ACCOUNT_NAME,
            account_key=DEVELOPMENT_ACCOUNT_KEY,
            development_storage=True,
        )

    @classmethod
    def _from_identity_settings(cls, name: str, settings: Mapping[str, str]) -> StorageConnection:
        def setting(key: str) -> str | None:
            return get_app_setting(settings, f"{name}__{key}")

        account_name = setting("accountName")
        endpoints: dict[Service, str] = {}
        for service in SERVICES:
            uri = setting(f"{service}ServiceUri")
            if uri is not None:
                endpoints[service] = _checked_url(uri, f"{name}__{service}ServiceUri")
            elif account_name is not None:
                endpoints[service] = f"https://{account_name}.{service}.core.windows.net"
        missing = [
            f"{name}__{service}ServiceUri" for service in SERVICES if service not in endpoints
        ]
        if missing:
            raise SettingsError(
                f"Storage connection {name!r} is missing {_join(missing)}: set "
                f"{name}__accountName, or all of {name}__blobServiceUri, "
                f"{name}__queueServiceUri and {name}__tableServiceUri"
            )
        return cls(
            name,
            endpoints,
            account_name=account_name or _account_from_url(endpoints["blob"]),
            identity=IdentitySettings.from_settings(name, setting),
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def account_name(self) -> str:
        return self._account_name

    @property
    def blob_endpoint(self) -> str:
        return self._endpoints["blob"]

    @property
    def queue_endpoint(self) -> str:
        return self._endpoints["queue"]

    @property
    def table_endpoint(self) -> str:
        return self._endpoints["table"]

    @property
    def is_development_storage(self) -> bool:
        """`UseDevelopmentStorage=true`, or every endpoint is on this machine (Azurite)."""
        return self._development_storage or all(
            urlsplit(url).hostname in LOOPBACK_HOSTS for url in self._endpoints.values()
        )

    @property
    def credential_kind(self) -> str:
        """How requests are authorised: account key, SAS, or which token credential."""
        if self._account_key is not None:
            return "account key"
        if self._sas_token is not None:
            return "shared access signature"
        return self._identity.kind

    @property
    def credential(self) -> StorageCredential:
        """The credential the clients use; a token credential is created on first access."""
        if self._account_key is not None:
            return AzureNamedKeyCredential(self._account_name, self._account_key)
        if self._sas_token is not None:
            return AzureSasCredential(self._sas_token)
        if self._token_credential is None:
            self._token_credential = self._identity.create()
        return self._token_credential

    # -- clients ---------------------------------------------------------------------------

    def with_options(self, options: StorageClientOptions) -> StorageConnection:
        """This connection with other client options (its token credential is shared)."""
        changed = copy.copy(self)
        changed.options = options
        return changed

    def detached(self) -> StorageConnection:
        """This connection with a token credential of its own (created on first use), for
        clients that run on another thread's event loop; `close()` it there."""
        copied = copy.copy(self)
        copied._token_credential = None
        return copied

    def blob_service(self) -> BlobServiceClient:
        """A new blob service client; the caller closes it."""
        return BlobServiceClient(
            self.blob_endpoint, credential=self.credential, **self.options.sdk_kwargs("blob")
        )

    def queue_service(self) -> QueueServiceClient:
        """A new queue service client; messages go as raw UTF-8 text (no base64 policy)."""
        return QueueServiceClient(
            self.queue_endpoint, credential=self.credential, **self.options.sdk_kwargs("queue")
        )

    def table_service(self) -> TableServiceClient:
        """A new table service client; the caller closes it."""
        return TableServiceClient(
            self.table_endpoint, credential=self.credential, **self.options.sdk_kwargs("table")
        )

    def rest_transport(self, service: Literal["queue", "table"]) -> RestTransport:
        """A new lean REST transport for queue messages or table rows; the caller closes it."""
        endpoint, version = (
            (self.queue_endpoint, QUEUE_API_VERSION)
            if service == "queue"
            else (self.table_endpoint, TABLE_API_VERSION)
        )
        options = self.options
        return RestTransport(
            endpoint,
            authorizer_for(self.credential, service),
            version,
            options.rest_observer(service),
            retry_delays=options.rest_retry_delays,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
        )

    async def close(self) -> None:
        """Close the token credential, if one was created (clients do not close it)."""
        if self._token_credential is not None:
            await self._token_credential.close()
            self._token_credential = None

    # -- display ---------------------------------------------------------------------------

    def describe(self) -> str:
        """One line for logs: the account, its endpoints and the kind of credential."""
        local = " (development storage)" if self.is_development_storage else ""
        return (
            f"storage account {self._account_name}{local} from {self.name}: "
            f"blob {self.blob_endpoint}, queue {self.queue_endpoint}, "
            f"table {self.table_endpoint}; {self.credential_kind}"
        )

    def __repr__(self) -> str:
        return (
            f"StorageConnection(name={self.name!r}, account_name={self._account_name!r}, "
            f"blob_endpoint={self.blob_endpoint!r}, queue_endpoint={self.queue_endpoint!r}, "
            f"table_endpoint={self.table_endpoint!r}, credential={self.credential_kind!r})"
        )


def development_storage_ports(connection: StorageConnection) -> tuple[int, int, int] | None:
    """(blob, queue, table) ports when the connection points at a local emulator over plain HTTP,
    else None: what a local host needs to start Azurite. An HTTPS emulator (certificates, OAuth)
    is the developer's to start."""
    if not connection.is_development_storage:
        return None
    urls = (connection.blob_endpoint, connection.queue_endpoint, connection.table_endpoint)
    if any(url.startswith("https:") for url in urls):
        return None
    ports = [urlsplit(url).port or 80 for url in urls]
    return ports[0], ports[1], ports[2]


def _parse_connection_string(connection_string: str, name: str) -> dict[str, str]:
    """`Key=Value;...` pairs with lower-cased keys. Errors name keys and positions, not values."""
    values: dict[str, str] = {}
    for position, segment in enumerate(connection_string.split(";"), start=1):
        if not segment.strip():
            continue
        key, separator, value = segment.partition("=")
        key = key.strip()
        if not separator or not key:
            raise SettingsError(
                f"Storage connection string {name} is not valid: part {position} is not "
                "Key=Value (expected e.g. DefaultEndpointsProtocol=https;AccountName=...;"
                "AccountKey=...)"
            )
        lowered = key.lower()
        if lowered not in _KNOWN_KEYS:
            # A mangled secret can land in the key position: show only short plain words.
            shown = f"{key!r}" if _PLAIN_KEY_RE.fullmatch(key) else f"at part {position}"
            raise SettingsError(f"Storage connection string {name} has an unknown key {shown}")
        if lowered in values:
            raise SettingsError(f"Storage connection string {name} repeats {key}")
        values[lowered] = value.strip()
    if not values:
        raise SettingsError(f"Storage connection string {name} is empty")
    return values


def _checked_url(url: str, setting: str) -> str:
    """An http(s) URL without a query string (which could carry a SAS); errors omit it."""
    url = url.strip()
    parts = urlsplit(url)
    try:
        _ = parts.port  # raises ValueError when the port is not a number
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise SettingsError(f"{setting} must be an http(s) URL without a query string")
    return url


def _account_from_url(url: str) -> str:
    """The account of an endpoint: the first path segment for emulator-style URLs
    (`http://127.0.0.1:10000/devstoreaccount1`), else the first label of the host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path_account = parts.path.strip("/").split("/")[0]
    if path_account and (host in LOOPBACK_HOSTS or host.replace(".", "").isdigit()):
        return path_account
    return host.split(".")[0]


def _has_section(settings: Mapping[str, str], name: str) -> bool:
    """True if any non-empty setting lives under `{name}__` or `{name}:`."""
    prefix = f"{name}:".lower()
    return any(
        value and key.replace("__", ":").lower().startswith(prefix)
        for key, value in settings.items()
    )


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
