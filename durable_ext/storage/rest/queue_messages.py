"""Queue message operations (put, get, delete, update visibility) over the REST transport."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .transport import RestTransport, quote_path

__all__ = ["QueueMessages", "SentMessage", "RawMessage", "QUEUE_API_VERSION"]

QUEUE_API_VERSION = "2021-02-12"
_XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: str
    pop_receipt: str
    inserted_on: datetime


@dataclass(frozen=True, slots=True)
class RawMessage:
    id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime
    content: str


def _rfc1123(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    return datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)


class QueueMessages:
    """The messages of one queue. Text goes as-is (XML-escaped), like the SDK without a policy."""

    def __init__(self, transport: RestTransport, queue_name: str) -> None:
        self._transport = transport
        self._path = "/" + quote_path(queue_name) + "/messages"

    async def put(self, text: str, *, visibility_timeout: int | None, ttl: int = -1) -> SentMessage:
        """Enqueue `text`, invisible for `visibility_timeout` seconds; returns its id and receipt."""
        query = {"messagettl": str(ttl)}
        if visibility_timeout:
            query["visibilitytimeout"] = str(visibility_timeout)
        body = (
            "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"
            f"{escape(text)}</MessageText></QueueMessage>"
        ).encode()
        response = await self._transport.request(
            "POST", self._path, query=query, headers=_XML_HEADERS, body=body, expect=(201,)
        )
        item = ElementTree.fromstring(response.body).find("QueueMessage")
        if item is None:
            raise ValueError("Put Message answered without a QueueMessage")
        return SentMessage(
            id=item.findtext("MessageId", ""),
            pop_receipt=item.findtext("PopReceipt", ""),
            inserted_on=_rfc1123(item.findtext("InsertionTime")),
        )

    async def get(self, count: int, visibility_timeout: int) -> list[RawMessage]:
        """Up to `count` visible messages, each hidden for `visibility_timeout` seconds."""
        response = await self._transport.request(
            "GET",
            self._path,
            query={"numofmessages": str(count), "visibilitytimeout": str(visibility_timeout)},
            expect=(200,),
        )
        return [
            RawMessage(
                id=item.findtext("MessageId", ""),
                pop_receipt=item.findtext("PopReceipt", ""),
                dequeue_count=int(item.findtext("DequeueCount", "1") or 1),
                inserted_on=_rfc1123(item.findtext("InsertionTime")),
                content=item.findtext("MessageText", ""),
            )
            for item in ElementTree.fromstring(response.body).iter("QueueMessage")
        ]

    async def delete(self, message_id: str, pop_receipt: str) -> None:
        await self._transport.request(
            "DELETE",
            f"{self._path}/{quote_path(message_id)}",
            query={"popreceipt": pop_receipt},
            expect=(204,),
        )

    async def update_visibility(self, message_id: str, pop_receipt: str, seconds: int) -> str:
        """Hide the message for `seconds` more; returns its new pop receipt."""
        response = await self._transport.request(
            "PUT",
            f"{self._path}/{quote_path(message_id)}",
            query={"popreceipt": pop_receipt, "visibilitytimeout": str(seconds)},
            expect=(204,),
        )
        return response.headers.get("x-ms-popreceipt", pop_receipt)
