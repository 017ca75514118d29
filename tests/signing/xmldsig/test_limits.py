"""Structural limits: each one holds at its value, refuses one past it, and runs before c14n."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree  # noqa: TID251

from exchange._clock import FrozenClock
from exchange._hazmat import xml_limits
from exchange._hazmat.xml import c14n_exclusive, parse
from exchange._hazmat.xml_limits import (
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_DOCUMENT_NAMESPACES,
    MAX_ELEMENT_NAMESPACES,
    MAX_NAME,
    MAX_NAMESPACE_URI,
    check_limits,
    max_elements,
)
from exchange.exceptions import ExchangeError, Malformed, TooComplex
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope

from ._forge import child, signature_of, tree

SIZE = 1024 * 1024  # a generous size, so that only the limit under test can bite


def checked(document: str, size: int = SIZE) -> None:
    """Parse ``document`` with the hardened parser and check its limits."""
    raw = document.encode()
    check_limits(parse(raw, max_size=len(raw)), size)


def too_complex(document: str, limit: int, size: int = SIZE) -> TooComplex:
    """Assert that ``document`` is refused as too-complex, naming ``limit``."""
    with pytest.raises(TooComplex) as info:
        checked(document, size)
    assert info.value.code == "too-complex"
    assert f"the limit is {limit}" in info.value.message
    assert info.value.data["limit"] == limit
    return info.value


def nested(depth: int) -> str:
    return "<a>" * depth + "</a>" * depth


def with_attributes(count: int) -> str:
    return "<r " + " ".join(f'a{i}="v"' for i in range(count)) + "/>"


def with_declarations(count: int) -> str:
    return "<r " + " ".join(f'xmlns:p{i}="urn:x:{i}"' for i in range(count)) + "/>"


@pytest.fixture
def signer(pki: ThrowawayPKI) -> Credentials:
    """single-center's credentials in the session PKI."""
    return pki.credentials("single-center")


@pytest.fixture
def verify(trust: TrustStore, clock: FrozenClock) -> Callable[[bytes], object]:
    """unseal() at the frozen time."""
    return lambda raw: unseal(raw, trust, clock=clock)


# --- each limit at its value and one past it --------------------------------------------


def test_depth_limit() -> None:
    """32 levels of elements pass; 33 are too complex."""
    assert MAX_DEPTH == 32
    checked(nested(MAX_DEPTH))
    too_complex(nested(MAX_DEPTH + 1), MAX_DEPTH)


def test_element_count_limit_is_one_per_eight_bytes() -> None:
    """A document of N bytes may hold N / 8 elements (at least 64), not one more."""
    assert max_elements(8000) == 1000
    assert max_elements(10) == xml_limits.MIN_ELEMENTS
    document = "<r>" + "<a/>" * 999 + "</r>"  # 1000 elements
    checked(document, size=8000)
    error = too_complex(document, 999, size=7999)
    assert "7999 bytes" in error.message


def test_attribute_limit() -> None:
    """32 attributes on one element pass; 33 are too complex."""
    assert MAX_ATTRIBUTES == 32
    checked(with_attributes(MAX_ATTRIBUTES))
    too_complex(with_attributes(MAX_ATTRIBUTES + 1), MAX_ATTRIBUTES)


def test_namespace_declarations_per_element_limit() -> None:
    """16 namespace declarations on one element pass; 17 are too complex."""
    assert MAX_ELEMENT_NAMESPACES == 16
    checked(with_declarations(MAX_ELEMENT_NAMESPACES))
    too_complex(with_declarations(MAX_ELEMENT_NAMESPACES + 1), MAX_ELEMENT_NAMESPACES)


def test_namespace_declarations_per_document_limit() -> None:
    """64 declarations spread over elements pass; a 65th anywhere is too complex."""
    assert MAX_DOCUMENT_NAMESPACES == 64

    def spread(total: int) -> str:
        children = "".join(
            "<c " + " ".join(f'xmlns:q{j}="urn:y:{i}:{j}"' for j in range(16)) + "/>"
            for i in range(total // 16)
        )
        rest = " ".join(f'xmlns:r{j}="urn:z:{j}"' for j in range(total % 16))
        return f"<r {rest}>{children}</r>"

    checked(spread(MAX_DOCUMENT_NAMESPACES))
    too_complex(spread(MAX_DOCUMENT_NAMESPACES + 1), MAX_DOCUMENT_NAMESPACES)


@pytest.mark.parametrize(
    "template",
    [
        "<{name}/>",
        '<p:{name} xmlns:p="urn:p"/>',
        '<r {name}="v"/>',
        '<r xmlns:p="urn:p" p:{name}="v"/>',
        '<r xmlns:{name}="urn:p"/>',
    ],
    ids=["element", "prefixed-element", "attribute", "prefixed-attribute", "namespace-prefix"],
)
def test_name_length_limit(template: str) -> None:
    """Names (elements, attributes, prefixes) of 128 characters pass; 129 are too complex."""
    assert MAX_NAME == 128
    checked(template.format(name="n" * MAX_NAME))
    too_complex(template.format(name="n" * (MAX_NAME + 1)), MAX_NAME)


def test_namespace_uri_length_limit() -> None:
    """A namespace URI of 1024 characters passes; 1025 is too complex."""
    assert MAX_NAMESPACE_URI == 1024

    def declared(length: int) -> str:
        return f'<r xmlns="urn:{"u" * (length - 4)}"/>'

    checked(declared(MAX_NAMESPACE_URI))
    too_complex(declared(MAX_NAMESPACE_URI + 1), MAX_NAMESPACE_URI)


def test_undeclaring_the_default_namespace_is_fine() -> None:
    """``xmlns=""`` is not a relative URI: it removes the default namespace."""
    checked('<r xmlns="urn:a"><c xmlns=""/></r>')


# --- through unseal: refused before any canonicalisation --------------------------------


def _payload(sealed: bytes, insert: bytes) -> bytes:
    return sealed.replace(b"<payload>", b"<payload>" + insert, 1)


def _attributes(count: int) -> bytes:
    return b" ".join(b'a%d="v"' % i for i in range(count))


def _declarations(count: int) -> bytes:
    return b" ".join(b'xmlns:p%d="urn:x:%d"' % (i, i) for i in range(count))


HOSTILE: dict[str, Callable[[bytes], bytes]] = {
    "depth": lambda raw: _payload(raw, nested(MAX_DEPTH).encode()),
    "attributes": lambda raw: raw.replace(
        b"<payload>", b"<payload " + _attributes(MAX_ATTRIBUTES + 1) + b">", 1
    ),
    "declarations-on-root": lambda raw: raw.replace(
        b"<envelope ", b"<envelope " + _declarations(MAX_ELEMENT_NAMESPACES + 1) + b" ", 1
    ),
    "declarations-on-signed-info": lambda raw: raw.replace(
        b"<ds:SignedInfo", b"<ds:SignedInfo " + _declarations(MAX_ELEMENT_NAMESPACES + 1), 1
    ),
    "elements": lambda raw: _payload(raw, b"<a/>" * len(raw)),
    "long-name": lambda raw: _payload(raw, b"<" + b"n" * (MAX_NAME + 1) + b"/>"),
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_unseal_refuses_past_a_limit_before_canonicalising(
    make: Callable[[bytes], bytes],
    signer: Credentials,
    clock: FrozenClock,
    verify: Callable[[bytes], object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each hostile shape is too-complex, and c14n never runs on it."""
    sealed = seal(make_envelope(clock), signer)
    raw = make(sealed)
    assert raw != sealed
    calls: list[Any] = []
    monkeypatch.setattr(
        "exchange.signing.xmldsig.verifier.c14n_exclusive", lambda node: calls.append(node)
    )
    with pytest.raises(TooComplex) as info:
        verify(raw)
    assert info.value.code == "too-complex"
    assert calls == []


def test_seal_refuses_what_verifiers_would_refuse(signer: Credentials, clock: FrozenClock) -> None:
    """Thousands of empty payload objects (``<s:a/>``, 6 bytes each): seal() says too-complex."""
    with pytest.raises(TooComplex) as info:
        seal(make_envelope(clock, payload={"a": [{}] * 5000}), signer)
    assert "one per 8 bytes" in info.value.message


def test_seal_and_unseal_agree_below_the_limits(
    signer: Credentials, clock: FrozenClock, verify: Callable[[bytes], object]
) -> None:
    """The deepest payload the model allows and many small objects still seal and verify."""
    deep: dict[str, Any] = {"leaf": "x"}
    for _ in range(15):
        deep = {"level": deep}
    verify(seal(make_envelope(clock, payload=deep), signer))
    verify(seal(make_envelope(clock, payload={"a": [{}] * 200}), signer))


# --- namespace URIs that canonicalisation refuses: malformed, never a crash -------------


def test_relative_namespace_uri_is_malformed() -> None:
    """A relative namespace URI is refused by the walk, before c14n would fail on it."""
    with pytest.raises(Malformed) as info:
        checked('<r xmlns:p="relative/path"/>')
    assert "relative namespace URI" in info.value.message


def test_canonicalisation_failure_is_malformed() -> None:
    """Whatever libxml2's c14n refuses surfaces as malformed, not as an lxml error."""
    root = etree.fromstring(b'<r xmlns:p="relative"><c/></r>')
    for node in (root, root[0]):
        with pytest.raises(Malformed) as info:
            c14n_exclusive(node)
        assert info.value.code == "malformed"


RELATIVE = "not/absolute"


def _on_root(root: etree._Element) -> None:
    root.set("{" + RELATIVE + "}a", "1")


def _in_signed_info(root: etree._Element) -> None:
    info = signature_of(root)[0]
    etree.SubElement(info, "{" + RELATIVE + "}x")


def _in_payload(root: etree._Element) -> None:
    etree.SubElement(child(root, "payload")[0], "{" + RELATIVE + "}x")


@pytest.mark.parametrize(
    "place", [_on_root, _in_signed_info, _in_payload], ids=["root", "signed-info", "payload"]
)
def test_relative_namespace_anywhere_is_malformed_through_unseal(
    place: Callable[[etree._Element], None],
    signer: Credentials,
    clock: FrozenClock,
    verify: Callable[[bytes], object],
) -> None:
    """The crash class of issue 12: relative namespace URIs, signed or not, are malformed."""
    root = tree(seal(make_envelope(clock), signer))
    place(root)
    # Re-signing is impossible (c14n refuses the tree), so the signature is stale: the
    # namespace must be refused first, as malformed, not crash or pass as a bad signature.
    with pytest.raises(ExchangeError) as info:
        verify(etree.tostring(root))
    assert type(info.value) is Malformed, info.value


ODD_URIS = ["http://a b", "urn:%zz", ":", "1abc:x", "urn:\u00fc", "#frag", "//host/x", " urn:x"]


@pytest.mark.parametrize("place", [b"<envelope", b"<ds:SignedInfo", b"<payload"])
@pytest.mark.parametrize("uri", ODD_URIS)
def test_unusable_namespace_uris_are_malformed_wherever_they_are(
    place: bytes,
    uri: str,
    signer: Credentials,
    clock: FrozenClock,
    verify: Callable[[bytes], object],
) -> None:
    """Invalid or relative namespace URIs on the root, in SignedInfo or the payload: malformed."""
    sealed = seal(make_envelope(clock), signer)
    raw = sealed.replace(place, place + b' xmlns:q="' + uri.encode() + b'"', 1)
    assert raw != sealed
    with pytest.raises(ExchangeError) as info:
        verify(raw)
    assert type(info.value) is Malformed, info.value
