"""The token credential of an identity-based connection, chosen from its `{name}__*` settings the
way the Azure Functions host chooses it:

- `__credential=managedidentity`: ManagedIdentityCredential, system-assigned, or user-assigned by
  `__clientId` or `__managedIdentityResourceId` (not both);
- `__tenantId`, `__clientId` and `__clientSecret` (no `__credential`): a service principal,
  ClientSecretCredential;
- otherwise DefaultAzureCredential (`__clientId` picks its managed identity).

Combinations the host would silently ignore parts of are errors here. The secret never appears
in `repr()`, `describe()` or error messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)

from ..settings import SettingsError

__all__ = ["IdentitySettings"]

MANAGED_IDENTITY = "managedidentity"
_TENANT_RE = re.compile(r"[A-Za-z0-9.-]+")
_RESOURCE_ID_RE = re.compile(
    r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
    r"microsoft\.managedidentity/userassignedidentities/[^/]+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """Which token credential a connection uses; `from_settings` validates the combination."""

    managed_identity: bool = False
    client_id: str | None = None
    resource_id: str | None = None
    tenant_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, name: str, setting: Callable[[str], str | None]) -> IdentitySettings:
        """Read `{name}__credential`, `__clientId`, `__managedIdentityResourceId`, `__tenantId`
        and `__clientSecret` through `setting(key)`; SettingsError for invalid combinations."""
        credential = setting("credential")
        client_id = setting("clientId")
        resource_id = setting("managedIdentityResourceId")
        tenant_id = setting("tenantId")
        client_secret = setting("clientSecret")
        if resource_id is not None and not _RESOURCE_ID_RE.fullmatch(resource_id):
            raise SettingsError(
                f"{name}__managedIdentityResourceId must be a user-assigned identity's resource "
                "id (/subscriptions/.../resourceGroups/.../providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/...)"
            )
        if credential is not None:
            if credential.lower() != MANAGED_IDENTITY:
                raise SettingsError(
                    f"{name}__credential must be 'managedidentity', or unset (then "
                    f"{name}__tenantId, {name}__clientId and {name}__clientSecret select a "
                    f"service principal, else DefaultAzureCredential is used), got {credential!r}"
                )
            if client_id is not None and resource_id is not None:
                raise SettingsError(
                    f"{name}__clientId and {name}__managedIdentityResourceId both name a "
                    "user-assigned identity; set one of them"
                )
            if tenant_id is not None or client_secret is not None:
                raise SettingsError(
                    f"{name}__tenantId and {name}__clientSecret are for a service principal; "
                    f"they cannot be combined with {name}__credential=managedidentity"
                )
            return cls(managed_identity=True, client_id=client_id, resource_id=resource_id)
        if resource_id is not None:
            raise SettingsError(
                f"{name}__managedIdentityResourceId needs {name}__credential=managedidentity"
            )
        if client_secret is not None or tenant_id is not None:
            missing = [
                f"{name}__{key}"
                for key, value in (
                    ("tenantId", tenant_id),
                    ("clientId", client_id),
                    ("clientSecret", client_secret),
                )
                if value is None
            ]
            if missing:
                raise SettingsError(
                    f"A service principal needs {name}__tenantId, {name}__clientId and "
                    f"{name}__clientSecret; {' and '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set"
                )
            assert tenant_id is not None
            if not _TENANT_RE.fullmatch(tenant_id):
                raise SettingsError(
                    f"{name}__tenantId must be a tenant id or domain (letters, digits, '.', '-')"
                )
        return cls(client_id=client_id, tenant_id=tenant_id, client_secret=client_secret)

    @property
    def kind(self) -> str:
        """What the credential is, for logs (never the secret)."""
        if self.managed_identity:
            if self.resource_id is not None:
                return f"managed identity (resource id {self.resource_id})"
            client = f" (client id {self.client_id})" if self.client_id else ""
            return f"managed identity{client}"
        if self.client_secret is not None:
            return f"service principal (tenant {self.tenant_id}, client id {self.client_id})"
        client = f" (client id {self.client_id})" if self.client_id else ""
        return f"DefaultAzureCredential{client}"

    def create(self) -> AsyncTokenCredential:
        """A new credential (the caller closes it). Reads the environment as azure-identity does
        (IDENTITY_ENDPOINT, AZURE_AUTHORITY_HOST, ...)."""
        if self.managed_identity:
            if self.resource_id is not None:
                return ManagedIdentityCredential(
                    identity_config={_resource_id_parameter(): self.resource_id}
                )
            return ManagedIdentityCredential(client_id=self.client_id)
        if self.client_secret is not None:
            assert self.tenant_id is not None and self.client_id is not None
            return ClientSecretCredential(self.tenant_id, self.client_id, self.client_secret)
        if self.client_id is not None:
            return DefaultAzureCredential(managed_identity_client_id=self.client_id)
        return DefaultAzureCredential()


def _resource_id_parameter() -> str:
    """The token request's parameter for a resource id: `mi_res_id` for the App Service /
    Functions endpoint (IDENTITY_ENDPOINT), `msi_res_id` for the VM metadata service."""
    return "mi_res_id" if os.environ.get("IDENTITY_ENDPOINT") else "msi_res_id"
