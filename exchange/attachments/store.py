"""A party's attachment store: files addressed by their SHA-256, in a directory beside its store.

``objects/<aa>/<sha256>`` holds complete, checked files only: every write goes to a temporary
file under ``tmp/`` (or a partial under ``partial/``), is fsynced, and is renamed into place,
so no reader ever sees a half-written object under its final name. A transfer under way is a
partial: ``partial/<sha256>.part`` (the bytes so far) and ``partial/<sha256>.offset`` (how many
of them are durable, written atomically); after a restart it resumes from that offset.
``refs/<sha256>`` lists the messages (one id a line) that carry an object: retention removes
an object once none of them keeps its content.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from exchange.envelope.model import SHA256_HEX_PATTERN, Attachment
from exchange.exceptions import AttachmentMismatch, AttachmentMissing, AttachmentRefused

_READ = 1024 * 1024
# A partial's offset is made durable after this many bytes (and at the end): a crash loses
# at most this much, which the sender's resend brings again.
CHECKPOINT_BYTES = 16 * 1024 * 1024
_SHA256 = re.compile(SHA256_HEX_PATTERN)


@dataclass(frozen=True)
class Stored:
    """An object in the store: its SHA-256 and size."""

    sha256: str
    size: int


def _check_sha(sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
    return sha256


def sync_dir(path: Path) -> None:
    """fsync a directory, so a rename into it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AttachmentStore:
    """Content-addressed files of one party; safe against crashes at any point."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._tmp = root / "tmp"
        self._partial = root / "partial"
        self._refs = root / "refs"
        for folder in (self._objects, self._tmp, self._partial, self._refs):
            folder.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the object ``sha256`` lives (whether or not it is there)."""
        sha256 = _check_sha(sha256)
        return self._objects / sha256[:2] / sha256

    def get(self, sha256: str) -> Stored | None:
        """The object ``sha256`` if the store holds it complete, else None."""
        try:
            size = self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None
        return Stored(sha256, size)

    def open(self, sha256: str) -> BinaryIO:
        """A readable handle of a complete object.

        Raises:
            AttachmentMissing (attachment-missing): the store does not hold it.
        """
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise AttachmentMissing(
                f"attachment {sha256} is not in the store at {self.root}", sha256=sha256
            ) from None

    def remove(self, sha256: str) -> None:
        """Remove an object and any partial of it (retention, a refused transfer)."""
        self.path(sha256).unlink(missing_ok=True)
        (self._refs / _check_sha(sha256)).unlink(missing_ok=True)
        Partial.discard_files(self, sha256)

    def add_ref(self, sha256: str, message_id: str) -> None:
        """Note that message ``message_id`` carries object ``sha256`` (durably)."""
        with (self._refs / _check_sha(sha256)).open("a", encoding="utf-8") as out:
            out.write(message_id + "\n")
            _flush_sync(out)

    def refs(self, sha256: str) -> tuple[list[str], float]:
        """The messages noted as carrying ``sha256``, and when the last was noted (epoch s)."""
        path = self._refs / _check_sha(sha256)
        try:
            return path.read_text(encoding="utf-8").split(), path.stat().st_mtime
        except FileNotFoundError:
            return [], self.path(sha256).stat().st_mtime

    def objects(self) -> list[str]:
        """The SHA-256 of every complete object."""
        return sorted(p.name for p in self._objects.glob("*/*") if _SHA256.match(p.name))

    async def put(self, source: Path | AsyncIterable[bytes], max_size: int | None = None) -> Stored:
        """Copy a file or an async byte stream into the store while hashing it.

        Memory stays flat (one read at a time). An object already held is kept as it is.

        Raises:
            AttachmentRefused (attachment-refused): more than ``max_size`` bytes; nothing kept.
        """
        temporary = self._tmp / f"{secrets.token_hex(8)}.tmp"
        digest = hashlib.sha256()
        size = 0
        try:
            with temporary.open("wb") as out:
                async for block in _blocks(source):
                    size += len(block)
                    if max_size is not None and size > max_size:
                        raise AttachmentRefused(
                            f"attachment is larger than the {max_size} bytes the service allows",
                            max_size=max_size,
                        )
                    digest.update(block)
                    await asyncio.to_thread(out.write, block)
                await asyncio.to_thread(_flush_sync, out)
            stored = Stored(digest.hexdigest(), size)
            self.install(temporary, stored.sha256)
        finally:
            temporary.unlink(missing_ok=True)
        return stored

    def install(self, source: Path, sha256: str) -> None:
        """Rename a complete, fsynced file into place as object ``sha256``."""
        target = self.path(sha256)
        target.parent.mkdir(exist_ok=True)
        os.replace(source, target)  # atomic: the object appears whole or not at all
        sync_dir(target.parent)

    def partial(self, sha256: str, size: int) -> Partial:
        """The partial object ``sha256`` of ``size`` bytes, resumed from its durable offset."""
        return Partial(self, _check_sha(sha256), size)


def _flush_sync(out: IO[Any]) -> None:
    out.flush()
    os.fsync(out.fileno())


async def _blocks(source: Path | AsyncIterable[bytes]) -> AsyncIterable[bytes]:
    if isinstance(source, Path):
        with source.open("rb") as file:
            while block := await asyncio.to_thread(file.read, _READ):
                yield block
        return
    async for block in source:
        yield bytes(block)


class Partial:
    """An object being received: appended in order, hashed as it grows, checked at the end.

    Its bytes live under ``partial/<sha>.part``; the durable offset under
    ``partial/<sha>.offset``. Opening one truncates the bytes to the durable offset and
    hashes them again (hash states cannot be saved), so a crash mid-write leaves nothing
    wrong behind. Blocking: call its methods from a worker thread.
    """

    def __init__(self, store: AttachmentStore, sha256: str, size: int) -> None:
        self.store = store
        self.sha256 = sha256
        self.size = size
        self._data, self._offset_file = Partial.files(store, sha256)
        self._hash = hashlib.sha256()
        self.offset = self._durable_offset()
        self._file = self._data.open("r+b" if self._data.exists() else "w+b")
        self._file.truncate(self.offset)
        self._file.seek(0)
        remaining = self.offset
        while remaining:
            block = self._file.read(min(_READ, remaining))
            self._hash.update(block)
            remaining -= len(block)
        self._unsynced = 0

    @staticmethod
    def files(store: AttachmentStore, sha256: str) -> tuple[Path, Path]:
        """The data file and offset file of partial ``sha256``."""
        base = store.root / "partial" / sha256
        return base.with_suffix(".part"), base.with_suffix(".offset")

    @staticmethod
    def discard_files(store: AttachmentStore, sha256: str) -> None:
        """Remove a partial's files."""
        for path in Partial.files(store, sha256):
            path.unlink(missing_ok=True)

    def _durable_offset(self) -> int:
        try:
            saved = json.loads(self._offset_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return 0
        offset = saved.get("offset") if isinstance(saved, dict) else None
        if saved.get("size") != self.size or not isinstance(offset, int):
            return 0  # another size announced for the same hash: start over
        if not 0 <= offset <= self.size or offset > self._data_size():
            return 0
        return offset

    def _data_size(self) -> int:
        try:
            return self._data.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, offset: int, data: bytes | memoryview) -> None:
        """Append ``data`` found at ``offset`` (which must be the current offset).

        Raises:
            AttachmentMismatch (attachment-mismatch): it would run past the announced size.
        """
        if offset != self.offset:
            raise ValueError(f"chunk at {offset}, partial at {self.offset}")
        if offset + len(data) > self.size:
            raise AttachmentMismatch(
                f"attachment {self.sha256} runs past its announced {self.size} bytes",
                sha256=self.sha256,
            )
        self._file.write(data)
        self._hash.update(data)
        self.offset += len(data)
        self._unsynced += len(data)
        if self._unsynced >= CHECKPOINT_BYTES:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Make the bytes so far durable, then the offset (so it never runs ahead of them)."""
        _flush_sync(self._file)
        temporary = self._offset_file.with_suffix(f".{secrets.token_hex(4)}.tmp")
        with temporary.open("w", encoding="utf-8") as out:
            json.dump({"offset": self.offset, "size": self.size}, out)
            _flush_sync(out)
        os.replace(temporary, self._offset_file)
        self._unsynced = 0

    @property
    def complete(self) -> bool:
        """All announced bytes are here (not yet checked)."""
        return self.offset == self.size

    def finish(self) -> Stored:
        """Check the hash and install the object under its final name.

        Raises:
            AttachmentMismatch (attachment-mismatch): the bytes' SHA-256 is not the announced
                one; the partial is discarded.
        """
        if self._hash.hexdigest() != self.sha256:
            self.discard()
            raise AttachmentMismatch(
                f"attachment {self.sha256}: its {self.size} bytes hash to another SHA-256",
                sha256=self.sha256,
            )
        _flush_sync(self._file)
        self._file.close()
        self.store.install(self._data, self.sha256)
        self._offset_file.unlink(missing_ok=True)
        return Stored(self.sha256, self.size)

    def close(self) -> None:
        """Stop writing for now (a checkpoint first): a later ``partial`` resumes it."""
        if not self._file.closed:
            self.checkpoint()
            self._file.close()

    def discard(self) -> None:
        """Throw the partial away."""
        if not self._file.closed:
            self._file.close()
        Partial.discard_files(self.store, self.sha256)


@dataclass(frozen=True)
class AttachmentFile:
    """An attachment of a received envelope, as a handler or connector reads it: its signed
    entry (name, media type, size, SHA-256) and a readable handle on the checked file."""

    entry: Attachment
    store: AttachmentStore

    @property
    def name(self) -> str:
        """The file name the sender gave."""
        return self.entry.name

    @property
    def media_type(self) -> str:
        """The media type the sender declared (and the catalog allowed)."""
        return self.entry.media_type

    @property
    def size(self) -> int:
        """Bytes, as signed in the envelope."""
        return self.entry.size

    @property
    def sha256(self) -> str:
        """SHA-256, as signed in the envelope (the store's object has exactly this hash)."""
        return self.entry.sha256

    @property
    def path(self) -> Path:
        """Where the file lives in the store (read it; never change it)."""
        return self.store.path(self.entry.sha256)

    def open(self) -> BinaryIO:
        """A readable binary handle; close it when done (``with file.open() as f``).

        Raises:
            AttachmentMissing (attachment-missing): removed from the store (retention).
        """
        return self.store.open(self.entry.sha256)
