"""Unpadded base64url: one spelling per value, everything else refused."""

from __future__ import annotations

import string

import pytest

from exchange.exceptions import Malformed
from exchange.signing.jws import _b64url

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


@pytest.mark.parametrize("size", range(7))
def test_round_trip(size: int) -> None:
    """Every length encodes without padding and decodes back."""
    data = bytes(range(200, 200 + size))
    text = _b64url.encode(data)
    assert "=" not in text
    assert _b64url.decode(text, "value") == data


@pytest.mark.parametrize(("size", "unused"), [(1, 4), (2, 2), (4, 4), (5, 2)])
def test_unused_bits_set(size: int, unused: int) -> None:
    """Each unused bit of the last character, set, raises Malformed, malformed."""
    text = _b64url.encode(bytes(range(1, 1 + size)))
    last = ALPHABET.index(text[-1])
    for bit in range(unused):
        respelled = text[:-1] + ALPHABET[last ^ (1 << bit)]
        with pytest.raises(Malformed) as caught:
            _b64url.decode(respelled, "value")
        assert caught.value.code == "malformed"
    # A bit above them changes the value, so that spelling stays valid.
    assert _b64url.decode(text[:-1] + ALPHABET[last ^ (1 << unused)], "value") != _b64url.decode(
        text, "value"
    )
