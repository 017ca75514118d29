"""Receiving attachments: chunks off the party's attachment queue, written while hashing.

A chunk is taken only for an attachment a verified envelope announced (``expect``), and,
where per-party broker users are in use, only as published by that envelope's sender's
broker user (the ``user_id`` the broker validated). Anything else is quarantined. A chunk
that arrives a little before its envelope is verified waits ``grace`` seconds for it.

Chunks are handled one at a time in delivery order (deliveries run as tasks; a FIFO lock
orders them), so a partial object only ever grows at its end. A chunk past the end (one
before it was lost) is dropped: the sender's resend brings them all again, and those held
already are dropped as duplicates. A finished object is checked against the announced
SHA-256 before it is installed; a mismatch throws the partial away.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.attachments.chunks import Chunk, decode
from exchange.attachments.store import AttachmentStore, Partial, Stored
from exchange.exceptions import (
    AttachmentMismatch,
    BrokerUserMismatch,
    ChunkInvalid,
    ChunkUnexpected,
    ExchangeError,
)
from exchange.transport.delivery import Delivery

Quarantine = Callable[[bytes, ExchangeError], Awaitable[None]]
Completed = Callable[[Stored], Awaitable[None]]
Mismatched = Callable[[str, AttachmentMismatch], Awaitable[None]]
_REMEMBERED = 10_000  # refused and unannounced hashes kept in memory, at most


@dataclass
class Expected:
    """An attachment a verified envelope announced: its size and who may send it."""

    sha256: str
    size: int
    senders: set[str] = field(default_factory=set)


class Receiver:
    """Takes chunks for announced attachments into the store; quarantines the rest."""

    def __init__(
        self,
        store: AttachmentStore,
        *,
        quarantine: Quarantine,
        completed: Completed,
        mismatched: Mismatched,
        sender_user: Callable[[str], str],
        require_user: bool = False,
        grace: float = 5.0,
        log: Callable[..., Any] | None = None,
    ) -> None:
        """``sender_user`` names a party's broker user; a chunk's broker-validated
        ``user_id``, when set (always, with ``require_user``: per-party users in use), must
        be that of a sender that announced it."""
        self.store = store
        self._quarantine = quarantine
        self._completed = completed
        self._mismatched = mismatched
        self._sender_user = sender_user
        self._require_user = require_user
        self.grace = grace
        self._log = log
        self._lock = asyncio.Lock()
        self._expected: dict[str, Expected] = {}
        self._announced: dict[str, asyncio.Event] = {}
        self._partials: dict[str, Partial] = {}
        # Refused (mismatched, or their request given up on): later chunks are dropped.
        self._refused: set[str] = set()
        # Announced by no envelope within the grace: later chunks are quarantined at once,
        # without holding the queue up for the grace again.
        self._strangers: set[str] = set()
        self._folder = store.root / "expected"
        self._folder.mkdir(exist_ok=True)
        self._load()

    # --- what verified envelopes announce ---------------------------------------------------

    def expect(self, sha256: str, size: int, sender: str) -> None:
        """Accept chunks of attachment ``sha256`` (``size`` bytes) from ``sender``; kept on
        disk, so chunks still coming after a restart are taken before the envelope returns."""
        expected = self._expected.setdefault(sha256, Expected(sha256, size))
        if expected.size != size:  # two envelopes disagree on one hash: the later one waits
            return
        if sender not in expected.senders:
            expected.senders.add(sender)
            self._save(expected)
        self._refused.discard(sha256)
        self._strangers.discard(sha256)
        self._announced.setdefault(sha256, asyncio.Event()).set()

    def forget(self, sha256: str) -> None:
        """Accept no more chunks of ``sha256`` (it arrived, or its request was refused)."""
        self._expected.pop(sha256, None)
        self._announced.pop(sha256, None)
        (self._folder / f"{sha256}.json").unlink(missing_ok=True)
        partial = self._partials.pop(sha256, None)
        if partial is not None:
            partial.discard()
        elif self.store.get(sha256) is None:
            Partial.discard_files(self.store, sha256)

    def refuse(self, sha256: str) -> None:
        """Forget ``sha256`` and drop its chunks still coming (its request was refused)."""
        self.forget(sha256)
        if len(self._refused) > _REMEMBERED:
            self._refused.clear()
        self._refused.add(sha256)

    def expecting(self, sha256: str) -> bool:
        """True while chunks of ``sha256`` are accepted."""
        return sha256 in self._expected

    def _save(self, expected: Expected) -> None:
        path = self._folder / f"{expected.sha256}.json"
        temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        temporary.write_text(
            json.dumps({"size": expected.size, "senders": sorted(expected.senders)}),
            encoding="utf-8",
        )
        os.replace(temporary, path)

    def _load(self) -> None:
        for path in self._folder.glob("*.json"):
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                expected = Expected(path.stem, int(saved["size"]), set(saved["senders"]))
            except (ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            self._expected[expected.sha256] = expected
            self._announced.setdefault(expected.sha256, asyncio.Event()).set()

    # --- the consumer ----------------------------------------------------------------------

    async def on_delivery(self, message: Delivery) -> None:
        """The AMQP consumer: handle one chunk, in delivery order, then ack."""
        async with self._lock:
            try:
                await self._chunk(message)
            except Exception as exc:  # the disk failed: let the broker bring it again
                if self._log is not None:
                    self._log().error("attachment.requeued", error=repr(exc))
                await message.nack(requeue=True)
                return
        await message.ack()

    async def _chunk(self, message: Delivery) -> None:
        try:
            chunk = decode(message.body)
        except ChunkInvalid as exc:
            await self._quarantine(message.body, exc)
            return
        if chunk.sha256 in self._refused or self.store.get(chunk.sha256) is not None:
            return  # a resend of what we hold, or the rest of a refused transfer
        expected = await self._announced_within_grace(chunk.sha256)
        if expected is None:
            await self._quarantine(
                message.body,
                ChunkUnexpected(f"no verified envelope announced attachment {chunk.sha256}"),
            )
            return
        allowed = {self._sender_user(sender) for sender in expected.senders}
        if (message.user_id is not None or self._require_user) and message.user_id not in allowed:
            await self._quarantine(
                message.body,
                BrokerUserMismatch(
                    f"a chunk of {chunk.sha256} came from broker user {message.user_id}, "
                    f"not from its sender ({', '.join(sorted(expected.senders))})"
                ),
            )
            return
        if chunk.total != expected.size:
            await self._mismatch(
                chunk.sha256, f"a chunk says {chunk.total} bytes, the envelope {expected.size}"
            )
            return
        partial = self._partials.get(chunk.sha256)
        if partial is None:
            partial = await asyncio.to_thread(self.store.partial, chunk.sha256, expected.size)
            self._partials[chunk.sha256] = partial
        if partial.complete:  # all bytes were durable before a restart: check and install
            await self._finish(partial)
            return
        outcome = await asyncio.to_thread(_apply, partial, chunk)
        if outcome == "tampered":
            await self._mismatch(chunk.sha256, f"the chunk at {chunk.offset} fails its own hash")
        elif outcome == "gap" and self._log is not None:
            self._log().info(
                "attachment.gap", sha256=chunk.sha256, at=chunk.offset, have=partial.offset
            )
        elif outcome == "complete":
            await self._finish(partial)

    async def _announced_within_grace(self, sha256: str) -> Expected | None:
        if sha256 not in self._expected and sha256 not in self._strangers:
            event = self._announced.setdefault(sha256, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), self.grace)
            except TimeoutError:
                if not event.is_set():
                    self._announced.pop(sha256, None)
                    if len(self._strangers) > _REMEMBERED:
                        self._strangers.clear()
                    self._strangers.add(sha256)
        return self._expected.get(sha256)

    async def _finish(self, partial: Partial) -> None:
        del self._partials[partial.sha256]
        try:
            stored = await asyncio.to_thread(partial.finish)
        except AttachmentMismatch as exc:
            await self._refuse(partial.sha256, exc)
            return
        self.forget(stored.sha256)
        if self._log is not None:
            self._log().info("attachment.received", sha256=stored.sha256, size=stored.size)
        await self._completed(stored)

    async def _mismatch(self, sha256: str, why: str) -> None:
        await self._refuse(sha256, AttachmentMismatch(f"attachment {sha256}: {why}", sha256=sha256))

    async def _refuse(self, sha256: str, error: AttachmentMismatch) -> None:
        self.refuse(sha256)
        if self._log is not None:
            self._log().warning("attachment.mismatch", sha256=sha256, reason=error.message)
        await self._mismatched(sha256, error)

    async def close(self) -> None:
        """Make partials durable (a restart resumes them), once no chunk is being written."""
        async with self._lock:
            for partial in self._partials.values():
                partial.close()
            self._partials.clear()

    @property
    def folder(self) -> Path:
        """Where the announcements are kept."""
        return self._folder


def _apply(partial: Partial, chunk: Chunk) -> str:
    """Check a chunk's own hash and append it (in a worker thread); say what became of it."""
    if chunk.offset < partial.offset:
        return "duplicate"
    if chunk.offset > partial.offset:
        return "gap"
    if not chunk.intact:
        return "tampered"
    partial.append(chunk.offset, chunk.data)
    return "complete" if partial.complete else "appended"
