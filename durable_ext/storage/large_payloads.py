"""Payloads too large for a queue message or a table property, gzipped in `{hub}-largemessages`."""

from __future__ import annotations

import contextlib
import gzip
import secrets
from urllib.parse import quote, unquote, urlparse

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

__all__ = [
    "LargePayloadStore",
    "MAX_MESSAGE_BYTES",
    "MAX_PROPERTY_UTF16_BYTES",
    "exceeds_property_limit",
]

MAX_MESSAGE_BYTES = 45 * 1024
MAX_PROPERTY_UTF16_BYTES = 60 * 1024


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

    def url_for(self, blob_name: str) -> str:
        return f"{self._container.url}/{quote(blob_name)}"

    def name_from_url(self, url: str) -> str:
        path = unquote(urlparse(url).path)
        marker = f"/{self.container_name}/"
        return path.split(marker, 1)[1] if marker in path else path.rsplit("/", 1)[-1]

    def is_blob_url(self, value: str) -> bool:
        return value.startswith(("http://", "https://")) and f"/{self.container_name}/" in value

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
