"""Files the simulated departments attach: site plans, photos, permits (generated, small).

Deterministic bytes from their inputs, so a handler run again attaches the same file (the
same SHA-256). A PDF of one page with a few lines of text; a PNG picture of a plot.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator, Sequence

from exchange.attachments import Outgoing


def pdf(title: str, lines: Sequence[str]) -> bytes:
    """A one-page PDF 1.4 with ``title`` and ``lines`` in Helvetica."""
    text = [f"BT /F1 16 Tf 56 780 Td ({_escape(title)}) Tj ET"]
    text += [
        f"BT /F1 11 Tf 56 {750 - 18 * i} Td ({_escape(line)}) Tj ET" for i, line in enumerate(lines)
    ]
    stream = "\n".join(text).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def photo(seed: str, width: int = 96, height: int = 64) -> bytes:
    """A PNG 'photo' of a plot: sky over a row of green trees, shaded by ``seed``."""
    shade = hashlib.sha256(seed.encode()).digest()
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            tree = y > height // 2 - (shade[x % 32] % (height // 3))
            pixel = (34, 110 + shade[x % 32] % 80, 34) if tree else (150, 190, 235 - y)
            row += bytes(pixel)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def attached(name: str, data: bytes) -> Outgoing:
    """``data`` as an attachment named ``name`` (its media type follows from the name)."""

    async def stream() -> AsyncIterator[bytes]:
        yield data

    return Outgoing(stream(), name=name)
