"""Unpadded base64url: one spelling per value, everything else refused."""

from __future__ import annotations

import pytest

from exchange.codec import b64url
from exchange.exceptions import Malformed
from tests.signing.jws._forge import respelled


@pytest.mark.parametrize("size", range(7))
def test_round_trip(size: int) -> None:
    """Every length encodes without padding and decodes back."""
    data = bytes(range(200, 200 + size))
    text = b64url.encode(data)
    assert "=" not in text
    assert b64url.decode(text, "value") == data


@pytest.mark.parametrize(("size", "unused"), [(1, 4), (2, 2), (4, 4), (5, 2)])
def test_unused_bits_set(size: int, unused: int) -> None:
    """Each unused bit of the last character, set, raises Malformed, malformed."""
    text = b64url.encode(bytes(range(1, 1 + size)))
    for bit in range(unused):
        with pytest.raises(Malformed) as caught:
            b64url.decode(respelled(text, bit), "value")
        assert caught.value.code == "malformed"
    # A bit above them changes the value, so that spelling stays valid.
    value = b64url.decode(text, "value")
    assert b64url.decode(respelled(text, unused), "value") != value
