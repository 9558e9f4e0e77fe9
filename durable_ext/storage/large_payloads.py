"""Payloads too large for a queue message or a table property, gzipped in `{hub}-largemessages`."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import secrets
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlparse

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

__all__ = [
    "BlobSuspects",
    "LargePayloadStore",
    "MAX_MESSAGE_BYTES",
    "MAX_PROPERTY_UTF16_BYTES",
    "exceeds_property_limit",
]

MAX_MESSAGE_BYTES = 45 * 1024
MAX_PROPERTY_UTF16_BYTES = 60 * 1024
_DELETE_CONCURRENCY = 16

log = logging.getLogger("durable_ext.payloads")


def exceeds_property_limit(text: str) -> bool:
    """True when a string column would pass DTFx's 60 KiB (UTF-16) threshold."""
    return (
        len(text) * 2 > MAX_PROPERTY_UTF16_BYTES
        and len(text.encode("utf-16-le")) > MAX_PROPERTY_UTF16_BYTES
    )


def _safe_segment(value: str) -> str:
    """A blob-name folder that cannot climb out of its parent (no `..`, no leading `/`)."""
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="") if "/" in value else value


class LargePayloadStore:
    """Gzip blobs for large messages and table properties; names follow DTFx."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container
        self._created = False

    @property
    def container_name(self) -> str:
        return self._container.container_name

    async def _ensure_container(self) -> None:
        if self._created:
            return
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()
        self._created = True

    async def upload(self, blob_name: str, text: str) -> None:
        await self._ensure_container()
        data = gzip.compress(text.encode("utf-8"), compresslevel=6)
        await self._container.upload_blob(blob_name, data, overwrite=True)

    async def download(self, blob_name: str) -> str:
        """The text of a blob, by name or by absolute URL."""
        if blob_name.startswith(("http://", "https://")):
            blob_name = self.name_from_url(blob_name)
        stream = await self._container.download_blob(blob_name)
        return gzip.decompress(await stream.readall()).decode("utf-8")

    async def put_message(
        self, instance_id: str, activity_id: str, event_type: str, text: str
    ) -> str:
        name = f"{_safe_segment(instance_id)}/message-{activity_id.replace('-', '')}-{event_type}.json.gz"
        await self.upload(name, text)
        return name

    async def put_property(
        self, partition_key: str, row_key: str, event_type: str, prop: str, text: str
    ) -> str:
        name = (
            f"{_safe_segment(partition_key)}/history-{row_key}-{event_type}-"
            f"{secrets.randbits(32):08X}-{prop}.json.gz"
        )
        await self.upload(name, text)
        return name

    async def put_row_property(
        self, partition_key: str, prop: str, text: str, execution_id: str | None
    ) -> str:
        """An Instances row's large Input/Output. Named after the execution when it is known, so
        the client's Pending row and the first checkpoint write the same blob (not two), and a
        new execution's blob never overwrites the one a reader of the old row may be fetching."""
        if not execution_id:
            return await self.put_property(partition_key, "", prop, prop, text)
        name = f"{_safe_segment(partition_key)}/history--{prop}-{execution_id}-{prop}.json.gz"
        await self.upload(name, text)
        return name

    def url_for(self, blob_name: str) -> str:
        return f"{self._container.url}/{quote(blob_name)}"

    def name_from_url(self, url: str) -> str:
        path = unquote(urlparse(url).path)
        marker = f"/{self.container_name}/"
        return path.split(marker, 1)[1] if marker in path else path.rsplit("/", 1)[-1]

    def instance_row_blob(self, value: str | None) -> str | None:
        """The blob name when an Instances Input/Output value is the URL of a property blob:
        one written for that row (`history--...`) or a history row's that the Instances row
        shares. None for inline values and queue-message blobs (`message-...`, which only
        purge deletes)."""
        if not value or not self.is_blob_url(value):
            return None
        name = self.name_from_url(value)
        folder, _, file = name.partition("/")
        return name if folder and file.startswith("history-") else None

    def is_blob_url(self, value: str) -> bool:
        return value.startswith(("http://", "https://")) and f"/{self.container_name}/" in value

    async def delete_blobs(self, names: Iterable[str]) -> set[str]:
        """Delete blobs by name (one already gone counts as deleted); the names that failed."""
        pending = sorted(names)
        failed: set[str] = set()
        for start in range(0, len(pending), _DELETE_CONCURRENCY):
            chunk = pending[start : start + _DELETE_CONCURRENCY]
            results = await asyncio.gather(
                *(self._container.delete_blob(name) for name in chunk), return_exceptions=True
            )
            for name, result in zip(chunk, results, strict=True):
                if isinstance(result, ResourceNotFoundError):
                    continue
                if isinstance(result, Exception):
                    log.warning("Could not delete blob %s: %s", name, result)
                    failed.add(name)
                elif isinstance(result, BaseException):
                    raise result
        return failed

    async def delete_folder(self, folder: str) -> int:
        """Delete every blob under `folder/`; returns how many."""
        count = 0
        try:
            async for blob in self._container.list_blobs(
                name_starts_with=f"{_safe_segment(folder)}/"
            ):
                try:
                    await self._container.delete_blob(blob.name)
                    count += 1
                except ResourceNotFoundError:
                    pass
        except ResourceNotFoundError:
            return 0
        return count


class BlobSuspects:
    """Per instance, blob names that may no longer be referenced by any committed history row.

    A name becomes a suspect when the checkpoint that uploaded it did not commit (a retried or
    conflicting checkpoint: the transaction may or may not have landed), when a new execution
    replaces the rows that referenced it, or when deleting it failed. After a checkpoint of the
    instance commits, the suspects are due: whichever no row of the committed execution references
    is deleted. At most `limit` instances are tracked; the oldest beyond are forgotten (their
    blobs stay until the instance is purged).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._names: dict[str, set[str]] = {}
        self._due: dict[str, str] = {}

    def add(self, instance_id: str, names: Iterable[str]) -> None:
        found = self._names.setdefault(instance_id, set())
        found.update(names)
        if not found:
            del self._names[instance_id]
        while len(self._names) > self._limit:
            oldest = next(iter(self._names))
            del self._names[oldest]
            self._due.pop(oldest, None)

    def discard(self, instance_id: str, names: Iterable[str]) -> None:
        """No longer suspect `names` (something outside the History table still uses them)."""
        found = self._names.get(instance_id)
        if found is not None:
            found.difference_update(names)

    def committed(self, instance_id: str, execution_id: str) -> None:
        """A checkpoint of `execution_id` committed: the instance's suspects are due."""
        if instance_id in self._names:
            self._due[instance_id] = execution_id

    def take_due(self, instance_id: str) -> tuple[str, set[str]] | None:
        """The committed execution and the suspects to check against it, if any are due."""
        execution_id = self._due.pop(instance_id, None)
        if execution_id is None:
            return None
        return execution_id, self._names.pop(instance_id, set())
