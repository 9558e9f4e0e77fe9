"""The app lease: one app at a time serves a task hub (DTFx `AppLeaseManager.cs`, `useAppLease`).

The lease is a container-level blob lease on `{h}-applease`. Its lease id is derived from the app
name, so every worker of one app proposes the same id and they can all hold it together, while
another app (a deployment slot, a second function app, a Durable Functions app with another
`WEBSITE_SITE_NAME`) cannot: the id is a GUID whose first 4 bytes are FNV-1a32 of the app name
(little-endian) and whose other 12 bytes are zero. The app name is `WEBSITE_SITE_NAME`, else
`DTFX_APP_NAME`, else empty, as in DTFx.

A worker tries to acquire the lease (duration `lease_interval`, 60 s) every `acquire_interval`
(300 s) until it gets it; only then does it start its partition manager. It renews every
`renew_interval` (25 s); a 409/412 on renewal (another app has the lease) stops the partition
manager (gracefully: drained and released) and the worker goes back to acquiring. Other renewal
failures count as renewed. The lease is never released: when an app stops, its lease expires and
the waiting app takes over on its next acquire attempt.

The info blob `{h}-applease/{h}-appleaseinfo` holds `{"OwnerId": lease id, "DesiredSwapId": ...}`;
an app whose id is `DesiredSwapId` takes the lease over with a change-lease from `OwnerId` instead
of waiting for it to expire (DTFx `ForceChangeAppLeaseAsync` writes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from .names import TaskHubNames, fnv1a32

__all__ = ["AppLease", "app_lease_id", "default_app_name"]

logger = logging.getLogger("durable_ext.app_lease")

_LEASE_CONFLICT = (409, 412)


def default_app_name(environ: Mapping[str, str] | None = None) -> str:
    """`WEBSITE_SITE_NAME`, else `DTFX_APP_NAME`, else empty (DTFx `AppName`)."""
    env = os.environ if environ is None else environ
    return env.get("WEBSITE_SITE_NAME") or env.get("DTFX_APP_NAME") or ""


def app_lease_id(app_name: str) -> str:
    """The app lease id of `app_name`: `xxxxxxxx-0000-0000-0000-000000000000`, the FNV-1a32
    hash of the UTF-8 name in the first four (little-endian) bytes of a .NET GUID."""
    digest = fnv1a32(app_name.encode("utf-8")).to_bytes(4, "little")
    return str(uuid.UUID(bytes_le=digest + bytes(12)))


class AppLease:
    """Acquires and keeps the app lease, running `start()` once held and `stop()` when lost."""

    def __init__(
        self,
        blob_service: BlobServiceClient,
        hub_name: str,
        app_name: str,
        *,
        lease_interval: timedelta = timedelta(seconds=60),
        renew_interval: timedelta = timedelta(seconds=25),
        acquire_interval: timedelta = timedelta(seconds=300),
    ) -> None:
        if not timedelta(0) < renew_interval < lease_interval:
            raise ValueError("the app lease renew interval must be shorter than its lease interval")
        names = TaskHubNames(hub_name)
        self.app_name = app_name
        self.lease_id = app_lease_id(app_name)
        self._container = blob_service.get_container_client(names.app_lease_container)
        self._info = self._container.get_blob_client(names.app_lease_info_blob)
        self._lease_seconds = int(lease_interval.total_seconds())
        self._renew_seconds = renew_interval.total_seconds()
        self._acquire_seconds = acquire_interval.total_seconds()
        self.held = False
        """True while this app holds the lease (and its partition manager runs)."""

    async def create(self) -> None:
        """Create the container and its info blob `{}` (idempotent)."""
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()
        with contextlib.suppress(ResourceExistsError):
            await self._info.upload_blob(b"{}", overwrite=False)

    async def run(
        self,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        *,
        held: bool = False,
    ) -> None:
        """Forever: wait for the lease (unless `held`: `acquire()` just got it and `start()` has
        run), `start()`, renew until lost, `stop()`. Cancel to end (the caller then stops what
        `start()` started)."""
        while True:
            if not held:
                while not await self.acquire():
                    await asyncio.sleep(self._acquire_seconds)
                await start()
            held = False
            await self._renew_until_lost()
            self.held = False
            await stop()

    async def acquire(self) -> bool:
        """One attempt to take the lease (or take it over, when this app is `DesiredSwapId`)."""
        try:
            info = json.loads(await (await self._info.download_blob()).readall() or b"{}")
            if info.get("DesiredSwapId") == self.lease_id and info.get("OwnerId"):
                await BlobLeaseClient(self._container, info["OwnerId"]).change(self.lease_id)
                logger.info("Took the app lease over from %s", info["OwnerId"])
                info = {"OwnerId": self.lease_id, "DesiredSwapId": None}
            else:
                await BlobLeaseClient(self._container, self.lease_id).acquire(self._lease_seconds)
                info["OwnerId"] = self.lease_id
            await self._info.upload_blob(json.dumps(info), overwrite=True)
        except (AzureError, ValueError) as error:
            logger.info(
                "App %r does not hold the app lease (another app likely does): %r; retrying in %.0f s",
                self.app_name,
                error,
                self._acquire_seconds,
            )
            return False
        logger.info("App %r acquired the app lease %s", self.app_name, self.lease_id)
        self.held = True
        return True

    async def _renew_until_lost(self) -> None:
        while True:
            await asyncio.sleep(self._renew_seconds)
            try:
                await BlobLeaseClient(self._container, self.lease_id).renew()
            except HttpResponseError as error:
                if error.status_code in _LEASE_CONFLICT:
                    logger.warning("App %r lost the app lease: %r", self.app_name, error)
                    return
                logger.warning("Renewing the app lease failed, assuming still held: %r", error)
            except AzureError as error:
                logger.warning("Renewing the app lease failed, assuming still held: %r", error)
