"""Envelope <-> JSON bytes, the same fields as ``exchange/data/schemas/envelope.schema.json``."""

from __future__ import annotations

from typing import Any

import jiter
from pydantic import ValidationError

from exchange._validation import first_error
from exchange.envelope.model import Envelope
from exchange.exceptions import Malformed


def encode_json(envelope: Envelope) -> bytes:
    """Serialise an envelope as compact UTF-8 JSON (absent optional fields left out)."""
    return envelope.model_dump_json(exclude_none=True).encode()


def loads_strict(raw: bytes) -> Any:
    """Parse JSON refusing duplicate members, NaN, Infinity and lone surrogates.

    Each of those is a parser differential: two readers of the same bytes could disagree
    about what they say, and only one of them checked the signature.

    Raises:
        Malformed (malformed): not UTF-8, not JSON, or ambiguous JSON.
    """
    try:
        return jiter.from_json(
            raw, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys"
        )
    except ValueError as exc:
        what = "ambiguous JSON" if "duplicate key" in str(exc) else "not JSON"
        raise Malformed(f"{what}: {exc}") from None


def decode_json(raw: bytes) -> Envelope:
    """Read an envelope from JSON bytes.

    Raises:
        Malformed (malformed): not strict JSON, or breaks the envelope model's rules.
    """
    loads_strict(raw)
    try:
        return Envelope.model_validate_json(raw)
    except ValidationError as exc:
        where, message = first_error(exc, "envelope")
        raise Malformed(f"envelope: {where}: {message}") from None
