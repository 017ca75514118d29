"""Unpadded base64url (RFC 7515 section 2), strict."""

from __future__ import annotations

import pybase64

from exchange.exceptions import Malformed

_TO_URL = bytes.maketrans(b"+/", b"-_")
# '+', '/' and '=' would pass the standard alphabet after translation: map them to '!',
# which validating decoding refuses, so one pass both translates and vets the alphabet.
_FROM_URL = bytes.maketrans(b"-_+/=", b"+/!!!")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS = {2: 0b1111, 3: 0b11}  # low bits of the last character, by length mod 4


def encode(data: bytes) -> str:
    """Base64url without padding."""
    return pybase64.b64encode(data).translate(_TO_URL).rstrip(b"=").decode()


def decode(text: str, what: str) -> bytes:
    """Decode unpadded base64url, accepting only the one canonical spelling of each value.

    Raises:
        Malformed (malformed): other characters, padding, an impossible length, or bits set
            that decoding would drop.
    """
    try:
        raw = text.encode("ascii")
        rest = len(raw) % 4
        if rest == 1:
            raise ValueError
        # The last character of a short group carries bits no byte uses: set, they would give
        # one value many spellings (RFC 4648 3.5), and a signed message many wire forms.
        if rest and _ALPHABET.find(text[-1]) & _UNUSED_BITS[rest]:
            raise ValueError
        return pybase64.b64decode(raw.translate(_FROM_URL) + b"=" * (-len(raw) % 4), validate=True)
    except ValueError:  # UnicodeEncodeError and binascii.Error are ValueErrors
        raise Malformed(f"{what} is not unpadded base64url") from None
