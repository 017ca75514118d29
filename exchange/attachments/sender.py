"""Sending attachments: stream an object of the store to a recipient's attachment queue.

Chunks are published persistent and confirmed, at most ``window`` unconfirmed at a time:
the next chunk is read from disk only when a slot frees, so memory stays flat whatever the
file's size. A request's uploads run as one task; a resend of the request (no receipt yet)
sends them again in full unless they are still under way; the receiver drops what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.attachments.chunks import CHUNK_SIZE, CONTENT_TYPE, MESSAGE_TYPE, Chunk, spans
from exchange.attachments.store import AttachmentStore
from exchange.envelope.model import Attachment
from exchange.exceptions import ExchangeError
from exchange.transport.base import Transport
from exchange.transport.names import BusNames

DEFAULT_WINDOW = 8
"""Chunks published and not yet confirmed, at most (flow control)."""
LOCATION = "bus:sha256:"
"""How an envelope's attachment entry says where the file is: moved over the bus by hash."""


@dataclass(frozen=True)
class Outgoing:
    """An attachment to send: a file, or an async byte stream with its name and media type."""

    source: Path | AsyncIterable[bytes]
    name: str | None = None
    media_type: str | None = None

    @classmethod
    def of(cls, item: Outgoing | Path | str) -> Outgoing:
        """An ``Outgoing`` from what the SDK takes: itself, or a path."""
        if isinstance(item, Outgoing):
            return item
        return cls(Path(item))

    def label(self) -> tuple[str, str]:
        """(name, media type): given, or from the path (``application/octet-stream`` unknown).

        Raises:
            ValueError: a stream without a name.
        """
        if isinstance(self.source, Path):
            name = self.name or self.source.name
            guessed = mimetypes.guess_type(self.source.name)[0]
        else:
            if self.name is None:
                raise ValueError("an attachment given as a stream needs a name")
            name, guessed = self.name, mimetypes.guess_type(self.name)[0]
        return name, self.media_type or guessed or "application/octet-stream"


class Uploader:
    """Publishes attachments of this party's store in confirmed chunks, flow-controlled."""

    def __init__(
        self,
        store: AttachmentStore,
        bus: Transport,
        names: BusNames,
        *,
        user_id: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        window: int = DEFAULT_WINDOW,
        log: Callable[..., Any] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.names = names
        self.user_id = user_id  # our broker user, when per-party users are in use
        self.chunk_size = chunk_size
        self.window = window
        self._log = log
        self._running: dict[str, asyncio.Task[None]] = {}

    async def send(self, recipient: str, attachment: Attachment) -> None:
        """Publish every chunk of one attachment; return once all are confirmed.

        Raises:
            AttachmentMissing (attachment-missing): the store no longer holds it.
            BrokerUnavailable, PublishNotConfirmed, Unroutable: a chunk did not go out.
        """
        queue = self.names.attachments(recipient)
        slots = asyncio.Semaphore(self.window)
        pending: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []

        async def publish(body: bytes) -> None:
            try:
                await self.bus.publish(
                    self.names.bus,
                    queue,
                    body,
                    content_type=CONTENT_TYPE,
                    message_type=MESSAGE_TYPE,
                    user_id=self.user_id,
                )
            except BaseException as exc:
                failed.append(exc)
            finally:
                slots.release()

        with self.store.open(attachment.sha256) as file:
            try:
                for offset, length in spans(attachment.size, self.chunk_size):
                    await slots.acquire()
                    if failed:
                        break
                    data = await asyncio.to_thread(_read_at, file, offset, length)
                    body = Chunk.of(attachment.sha256, offset, attachment.size, data).encode()
                    task = asyncio.create_task(publish(body))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                if pending:
                    await asyncio.gather(*pending)
            finally:
                for task in pending:
                    task.cancel()
        if failed:
            raise failed[0]

    def start(self, request_id: str, recipient: str, attachments: Sequence[Attachment]) -> None:
        """Upload a request's attachments in the background, unless that is under way."""
        running = self._running.get(request_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._upload(request_id, recipient, attachments))
        self._running[request_id] = task
        task.add_done_callback(lambda _: self._forget(request_id, task))

    def _forget(self, request_id: str, task: asyncio.Task[None]) -> None:
        if self._running.get(request_id) is task:
            del self._running[request_id]

    def uploading(self, request_id: str) -> bool:
        """True while the attachments of ``request_id`` are being sent."""
        return request_id in self._running

    def cancel(self, request_id: str) -> None:
        """Stop sending a request's attachments (it has its receipt: they all arrived)."""
        task = self._running.pop(request_id, None)
        if task is not None:
            task.cancel()

    async def _upload(
        self, request_id: str, recipient: str, attachments: Sequence[Attachment]
    ) -> None:
        try:
            for attachment in attachments:
                await self.send(recipient, attachment)
        except ExchangeError as exc:
            # The request is resent without a receipt, and its attachments with it.
            if self._log is not None:
                self._log(message_id=request_id).warning(
                    "attachments.deferred", code=exc.code, error=exc.message
                )
            return
        if self._log is not None:
            self._log(message_id=request_id).info(
                "attachments.sent", count=len(attachments), recipient=recipient
            )

    async def stop(self) -> None:
        """Cancel uploads under way (the relay sends them again after a restart)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()


def _read_at(file: Any, offset: int, length: int) -> bytes:
    file.seek(offset)
    data: bytes = file.read(length)
    return data
