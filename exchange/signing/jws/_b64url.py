"""Unpadded base64url (RFC 7515 section 2), strict."""

from __future__ import annotations

import pybase64

from exchange.exceptions import Malformed

_TO_URL = bytes.maketrans(b"+/", b"-_")
# '+', '/' and '=' would pass the standard alphabet after translation: map them to '!',
# which validating decoding refuses, so one pass both translates and vets the alphabet.
_FROM_URL = bytes.maketrans(b"-_+/=", b"+/!!!")


def encode(data: bytes) -> str:
    """Base64url without padding."""
    return pybase64.b64encode(data).translate(_TO_URL).rstrip(b"=").decode()


def decode(text: str, what: str) -> bytes:
    """Decode unpadded base64url.

    Raises:
        Malformed (malformed): other characters, padding, or an impossible length.
    """
    try:
        raw = text.encode("ascii")
        if len(raw) % 4 == 1:
            raise ValueError
        return pybase64.b64decode(raw.translate(_FROM_URL) + b"=" * (-len(raw) % 4), validate=True)
    except ValueError:  # UnicodeEncodeError and binascii.Error are ValueErrors
        raise Malformed(f"{what} is not unpadded base64url") from None
