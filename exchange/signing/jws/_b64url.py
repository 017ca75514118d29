"""Unpadded base64url (RFC 7515 section 2), strict."""

from __future__ import annotations

import base64
import re

from exchange.exceptions import Malformed

_ALPHABET = re.compile(r"^[A-Za-z0-9_-]*$")


def encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text: str, what: str) -> bytes:
    """Decode unpadded base64url.

    Raises:
        Malformed (malformed): other characters, padding, or an impossible length.
    """
    if not _ALPHABET.match(text) or len(text) % 4 == 1:
        raise Malformed(f"{what} is not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
