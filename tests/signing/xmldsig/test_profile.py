"""The profile all the way down: what ``profile.SIGNATURE`` does not name is refused.

Each case changes one thing inside a valid signature and re-signs SignedInfo, so the only
reason left to refuse it is the profile rule under test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree  # noqa: TID251

from exchange._clock import FrozenClock
from exchange.exceptions import ExchangeError, SignatureInvalid, UnsupportedAlgorithm
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import VerifiedEnvelope, seal, unseal
from exchange.signing.xmldsig.profile import DS, ENVELOPED, EXC_C14N, SIGNATURE, Shape
from exchange.testing import ThrowawayPKI, make_envelope

from ._forge import resign_signed_info, signature_of, to_bytes, tree

Change = Callable[[etree._Element], None]


@pytest.fixture
def signer(pki: ThrowawayPKI) -> Credentials:
    """single-center's credentials in the session PKI."""
    return pki.credentials("single-center")


@pytest.fixture
def sealed(signer: Credentials, clock: FrozenClock) -> bytes:
    """A valid XML envelope."""
    return seal(make_envelope(clock), signer)


@pytest.fixture
def check(trust: TrustStore, clock: FrozenClock) -> Callable[[bytes], VerifiedEnvelope]:
    """unseal() at the frozen time."""
    return lambda raw: unseal(raw, trust, clock=clock)


def at(root: etree._Element, path: str) -> etree._Element:
    """The element at a ``ds:``-prefixed path below ``ds:Signature`` ('' for the signature)."""
    sig = signature_of(root)
    if not path:
        return sig
    found = sig.find(path.replace("ds:", DS))
    assert found is not None, path
    return found


def changed(sealed: bytes, signer: Credentials, change: Change) -> bytes:
    """``sealed`` with ``change`` applied, SignedInfo re-signed so its signature holds."""
    root = tree(sealed)
    change(root)
    return resign_signed_info(root, signer)


def refused_as(
    check: Callable[[bytes], VerifiedEnvelope], raw: bytes, error: type[ExchangeError]
) -> ExchangeError:
    """Assert ``raw`` is refused with exactly ``error``."""
    with pytest.raises(ExchangeError) as info:
        check(raw)
    assert type(info.value) is error, info.value
    return info.value


def _paths(shape: Shape = SIGNATURE, prefix: str = "") -> list[tuple[str, Shape]]:
    """Every element of the profile by its path below ds:Signature."""
    here = [(prefix, shape)]
    counts: dict[str, int] = {}
    for child in shape.children:
        counts[child.name] = counts.get(child.name, 0) + 1
        step = f"ds:{child.name}" + (f"[{counts[child.name]}]" if child.name == "Transform" else "")
        here += _paths(child, f"{prefix}/{step}" if prefix else step)
    return here


PATHS = _paths()
BELOW_SIGNATURE = [(path, shape) for path, shape in PATHS if path]


def test_the_profile_names_every_element_of_our_signature(sealed: bytes) -> None:
    """The shape tree and the signer agree: every element we sign is in the profile."""
    sig = signature_of(tree(sealed))
    assert len(list(sig.iter())) == len(PATHS) == 14


# --- unknown children -------------------------------------------------------------------


def _add(path: str, tag: str, text: str | None = None, **attrib: str) -> Change:
    def apply(root: etree._Element) -> None:
        node = etree.SubElement(at(root, path), tag, attrib)
        node.text = text

    return apply


EXC = "{" + EXC_C14N + "}"

UNKNOWN_CHILDREN: dict[str, Change] = {
    "inclusive-namespaces-on-c14n-method": _add(
        "ds:SignedInfo/ds:CanonicalizationMethod",
        EXC + "InclusiveNamespaces",
        PrefixList="#default",
    ),
    "inclusive-namespaces-on-c14n-transform": _add(
        "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[2]",
        EXC + "InclusiveNamespaces",
        PrefixList="s",
    ),
    "hmac-output-length": _add("ds:SignedInfo/ds:SignatureMethod", DS + "HMACOutputLength", "128"),
    "xpath-in-enveloped-transform": _add(
        "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[1]", DS + "XPath", "1"
    ),
    "child-of-digest-method": _add("ds:SignedInfo/ds:Reference/ds:DigestMethod", DS + "X"),
    "child-of-digest-value": _add("ds:SignedInfo/ds:Reference/ds:DigestValue", DS + "X"),
    "foreign-element-in-signed-info": _add("ds:SignedInfo", "{urn:other}X"),
    "foreign-element-in-reference": _add("ds:SignedInfo/ds:Reference", "{urn:other}X"),
    "third-transform-of-an-allowed-kind": _add(
        "ds:SignedInfo/ds:Reference/ds:Transforms", DS + "Transform", Algorithm=EXC_C14N
    ),
}


@pytest.mark.parametrize("change", UNKNOWN_CHILDREN.values(), ids=UNKNOWN_CHILDREN.keys())
def test_unknown_children_in_signed_info_are_refused(
    check: Callable[[bytes], VerifiedEnvelope], sealed: bytes, signer: Credentials, change: Change
) -> None:
    """A child the profile does not name, however harmless it looks: signature-invalid."""
    error = refused_as(check, changed(sealed, signer, change), SignatureInvalid)
    assert error.code == "signature-invalid"
    assert "must hold" in error.message


KEY_INFO_CHILDREN: dict[str, Change] = {
    "child-of-signature-value": _add("ds:SignatureValue", DS + "X"),
    "key-value": _add("ds:KeyInfo", DS + "KeyValue"),
    "x509-issuer-serial": _add("ds:KeyInfo/ds:X509Data", DS + "X509IssuerSerial"),
    "second-certificate": _add("ds:KeyInfo/ds:X509Data", DS + "X509Certificate", "MIIB"),
    "child-of-certificate": _add("ds:KeyInfo/ds:X509Data/ds:X509Certificate", DS + "X"),
}


@pytest.mark.parametrize("change", KEY_INFO_CHILDREN.values(), ids=KEY_INFO_CHILDREN.keys())
def test_unknown_children_outside_signed_info_are_refused(
    check: Callable[[bytes], VerifiedEnvelope], sealed: bytes, change: Change
) -> None:
    """KeyInfo and SignatureValue hold exactly the profile's elements too."""
    root = tree(sealed)
    change(root)
    refused_as(check, to_bytes(root), SignatureInvalid)


# --- unknown attributes, on every element of the profile --------------------------------


@pytest.mark.parametrize(
    "attribute", ["Id", "{http://www.w3.org/XML/1998/namespace}id", "{urn:o}a"]
)
@pytest.mark.parametrize(("path", "shape"), BELOW_SIGNATURE, ids=[p for p, _ in BELOW_SIGNATURE])
def test_unknown_attributes_are_refused(
    check: Callable[[bytes], VerifiedEnvelope],
    sealed: bytes,
    signer: Credentials,
    path: str,
    shape: Shape,
    attribute: str,
) -> None:
    """Any attribute the profile does not name, on any element: signature-invalid."""
    assert attribute not in shape.attributes

    def change(root: etree._Element) -> None:
        at(root, path).set(attribute, "x")

    error = refused_as(check, changed(sealed, signer, change), SignatureInvalid)
    assert "unexpected attribute" in error.message


# --- stray text -------------------------------------------------------------------------


def _text(path: str, text: str) -> Change:
    def apply(root: etree._Element) -> None:
        node = at(root, path)
        node.text = text + (node.text or "")

    return apply


def _tail(path: str, text: str) -> Change:
    def apply(root: etree._Element) -> None:
        at(root, path).tail = text

    return apply


ELEMENT_ONLY = [path for path, shape in PATHS if not shape.text]


@pytest.mark.parametrize("path", ELEMENT_ONLY, ids=ELEMENT_ONLY)
@pytest.mark.parametrize("text", ["x", "\u00a0"], ids=["letter", "no-break-space"])
def test_text_in_element_only_or_empty_elements_is_refused(
    check: Callable[[bytes], VerifiedEnvelope],
    sealed: bytes,
    signer: Credentials,
    path: str,
    text: str,
) -> None:
    """Text other than XML whitespace where the profile names none: signature-invalid."""
    error = refused_as(check, changed(sealed, signer, _text(path, text)), SignatureInvalid)
    assert "stray text" in error.message


@pytest.mark.parametrize(("path", "_shape"), BELOW_SIGNATURE, ids=[p for p, _ in BELOW_SIGNATURE])
def test_text_after_any_element_is_refused(
    check: Callable[[bytes], VerifiedEnvelope],
    sealed: bytes,
    signer: Credentials,
    path: str,
    _shape: Shape,
) -> None:
    """Text between the profile's elements: signature-invalid."""
    error = refused_as(check, changed(sealed, signer, _tail(path, "x")), SignatureInvalid)
    assert "stray text after" in error.message


def test_xml_whitespace_anywhere_is_accepted(
    check: Callable[[bytes], VerifiedEnvelope], sealed: bytes, signer: Credentials
) -> None:
    """Indentation (spaces, tabs, CR, LF) between and inside elements is not text: accepted."""

    def indent(root: etree._Element) -> None:
        for path in ELEMENT_ONLY:
            node = at(root, path)
            node.text = "\n\t \r\n" + (node.text or "")
            if path:
                node.tail = "\n  "

    check(changed(sealed, signer, indent))


# --- attributes the profile requires ----------------------------------------------------


def _drop(path: str, attribute: str) -> Change:
    def apply(root: etree._Element) -> None:
        del at(root, path).attrib[attribute]

    return apply


def _set(path: str, attribute: str, value: str) -> Change:
    def apply(root: etree._Element) -> None:
        at(root, path).set(attribute, value)

    return apply


ALGORITHM_CASES: dict[str, Change] = {
    "c14n-method-without-algorithm": _drop("ds:SignedInfo/ds:CanonicalizationMethod", "Algorithm"),
    "signature-method-without-algorithm": _drop("ds:SignedInfo/ds:SignatureMethod", "Algorithm"),
    "transform-without-algorithm": _drop(
        "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[1]", "Algorithm"
    ),
    "digest-method-without-algorithm": _drop(
        "ds:SignedInfo/ds:Reference/ds:DigestMethod", "Algorithm"
    ),
    "enveloped-twice": _set(
        "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[2]", "Algorithm", ENVELOPED
    ),
    "exc-c14n-twice": _set(
        "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform[1]", "Algorithm", EXC_C14N
    ),
    "transform-uri-as-c14n-method": _set(
        "ds:SignedInfo/ds:CanonicalizationMethod", "Algorithm", ENVELOPED
    ),
}


@pytest.mark.parametrize("change", ALGORITHM_CASES.values(), ids=ALGORITHM_CASES.keys())
def test_missing_or_misplaced_algorithms_are_unsupported(
    check: Callable[[bytes], VerifiedEnvelope], sealed: bytes, signer: Credentials, change: Change
) -> None:
    """An algorithm absent, or allowed elsewhere but not at this place: unsupported-algorithm."""
    error = refused_as(check, changed(sealed, signer, change), UnsupportedAlgorithm)
    assert error.code == "unsupported-algorithm"


def test_reference_uri_other_than_empty_is_refused(
    check: Callable[[bytes], VerifiedEnvelope], sealed: bytes, signer: Credentials
) -> None:
    """URI=" " is not URI="": signature-invalid, naming the value required."""
    error = refused_as(
        check,
        changed(sealed, signer, _set("ds:SignedInfo/ds:Reference", "URI", " ")),
        SignatureInvalid,
    )
    assert 'URI=""' in error.message
