"""Envelope <-> JSON bytes, the same fields as ``schemas/envelope.schema.json``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from exchange.envelope.model import Envelope
from exchange.exceptions import Malformed


def encode_json(envelope: Envelope) -> bytes:
    """Serialise an envelope as compact UTF-8 JSON (absent optional fields left out)."""
    return envelope.model_dump_json(exclude_none=True).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise Malformed(f"duplicate JSON member {key!r}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> None:
    raise Malformed(f"{name} is not JSON")


def loads_strict(raw: bytes | str) -> Any:
    """Parse JSON refusing duplicate members, NaN and Infinity (parser differentials).

    Raises:
        Malformed (malformed): not UTF-8, not JSON, or ambiguous JSON.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise Malformed(f"not UTF-8 at byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed(f"not JSON: {exc}") from None


def decode_json(raw: bytes) -> Envelope:
    """Read an envelope from JSON bytes.

    Raises:
        Malformed (malformed): not strict JSON, or breaks the envelope model's rules.
    """
    loads_strict(raw)
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "envelope"
        raise Malformed(f"envelope: {where}: {first['msg']}") from None
