"""The chunk message: one piece of an attachment on its way to the recipient's attachment queue.

A body is a magic line, a JSON header and the data::

    KZA1\\n{"sha256": ..., "offset": ..., "total": ..., "digest": ...}\\n<data>

``sha256`` and ``total`` name the whole attachment (as the signed envelope lists it),
``offset`` where the data belongs, ``digest`` the SHA-256 of the data itself. Nothing here
is trusted: the receiver checks every field against an envelope it verified.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from exchange.envelope.model import SHA256_HEX_PATTERN
from exchange.exceptions import ChunkInvalid

CHUNK_SIZE = 1024 * 1024
"""Bytes of attachment data per chunk by default."""
CONTENT_TYPE = "application/vnd.kazan.attachment-chunk"
MESSAGE_TYPE = "attachment-chunk"
_MAGIC = b"KZA1\n"
_MAX_HEADER = 512
_SHA256 = re.compile(SHA256_HEX_PATTERN)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of an attachment: where it belongs and the hash of its own bytes."""

    sha256: str
    offset: int
    total: int
    digest: str
    data: bytes | memoryview

    @classmethod
    def of(cls, sha256: str, offset: int, total: int, data: bytes | memoryview) -> Chunk:
        """The chunk of ``data`` at ``offset`` of attachment ``sha256`` (``total`` bytes)."""
        return cls(sha256, offset, total, hashlib.sha256(data).hexdigest(), data)

    @property
    def intact(self) -> bool:
        """Its data hashes to its own digest."""
        return hashlib.sha256(self.data).hexdigest() == self.digest

    def encode(self) -> bytes:
        """The message body."""
        header = json.dumps(
            {
                "sha256": self.sha256,
                "offset": self.offset,
                "total": self.total,
                "digest": self.digest,
            },
            separators=(",", ":"),
        ).encode()
        return b"".join((_MAGIC, header, b"\n", self.data))


def decode(body: bytes) -> Chunk:
    """Read a chunk message; its data is a view of ``body`` (no copy).

    Raises:
        ChunkInvalid (chunk-invalid): not a chunk, or a field out of range.
    """
    if not body.startswith(_MAGIC):
        raise ChunkInvalid("not an attachment chunk (no KZA1 header)")
    end = body.find(b"\n", len(_MAGIC), len(_MAGIC) + _MAX_HEADER)
    if end < 0:
        raise ChunkInvalid("attachment chunk header missing or too long")
    try:
        header = json.loads(body[len(_MAGIC) : end])
    except ValueError:
        raise ChunkInvalid("attachment chunk header is not JSON") from None
    if not isinstance(header, dict) or set(header) != {"sha256", "offset", "total", "digest"}:
        raise ChunkInvalid("attachment chunk header has other fields than expected")
    sha256, offset, total, digest = (header[k] for k in ("sha256", "offset", "total", "digest"))
    if not all(isinstance(v, str) and _SHA256.match(v) for v in (sha256, digest)):
        raise ChunkInvalid("attachment chunk names no valid SHA-256")
    if not all(type(v) is int and v >= 0 for v in (offset, total)):
        raise ChunkInvalid("attachment chunk offset and total must be non-negative integers")
    data = memoryview(body)[end + 1 :]
    if offset + len(data) > total:
        raise ChunkInvalid("attachment chunk runs past its attachment's total size")
    return Chunk(sha256, offset, total, digest, data)


def spans(total: int, size: int = CHUNK_SIZE) -> list[tuple[int, int]]:
    """(offset, length) of each chunk of a ``total``-byte attachment (one empty chunk if 0)."""
    if total == 0:
        return [(0, 0)]
    return [(offset, min(size, total - offset)) for offset in range(0, total, size)]
