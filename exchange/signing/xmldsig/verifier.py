"""Verify an XML envelope against our XML-DSig profile and the trust store.

The profile: one ``ds:Signature``, the last child of the envelope; one ``Reference`` with
``URI=""`` (the whole document) and exactly the transforms enveloped-signature then
exclusive c14n; SHA-256; ECDSA P-256 or RSA with SHA-256; the signer's certificate as the
only thing in ``KeyInfo``. Anything else is refused before any key is used.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

from exchange._hazmat import signature
from exchange._hazmat.xml import Element, c14n_exclusive, parse
from exchange.codec.xml import ENVELOPE_NS, decode_xml, payload_document
from exchange.exceptions import Malformed, SenderMismatch, SignatureInvalid, UnsupportedAlgorithm
from exchange.pki.trust import TrustStore
from exchange.signing._certs import b64decode_strict, load_certificate, public_key_of
from exchange.signing.base import VerifiedEnvelope, WireFormat, digest
from exchange.signing.xmldsig.profile import DS, EXC_C14N, SHA256, SIGNATURE_METHODS, TRANSFORMS

# The attributes each profile element may carry; any other is refused.
_ALGORITHM_ATTR = frozenset({"Algorithm"})
_SIGNED_INFO_ATTRS = {
    "CanonicalizationMethod": _ALGORITHM_ATTR,
    "SignatureMethod": _ALGORITHM_ATTR,
    "Reference": frozenset({"URI"}),
}
_REFERENCE_ATTRS = {"DigestMethod": _ALGORITHM_ATTR}
_TRANSFORM_ATTRS = {"Transform": _ALGORITHM_ATTR}
_C14N_METHODS = frozenset({EXC_C14N})
_DIGEST_METHODS = frozenset({SHA256})
_SIGNATURE_METHOD_URIS = frozenset(SIGNATURE_METHODS)
_TRANSFORM_URIS = frozenset(TRANSFORMS)


def verify_xml(raw: bytes, trust: TrustStore, at: datetime, *, max_size: int) -> VerifiedEnvelope:
    """Verify a signed XML envelope; return exactly what was signed.

    Raises:
        TooLarge, Malformed: the bytes are not an acceptable XML envelope.
        SignatureInvalid, UnsupportedAlgorithm: the signature is missing, off-profile or wrong.
        TrustError subclasses: the signer certificate is not good at ``at``.
        SenderMismatch (sender-mismatch): signed by another party than the sender.
    """
    root = parse(raw, max_size=max_size)
    if root.tag != "{" + ENVELOPE_NS + "}envelope":
        raise Malformed(f"root element {root.tag} is not an exchange envelope")
    sig = _the_signature(root)
    info, value_node, key_info = _exactly(sig, ("SignedInfo", "SignatureValue", "KeyInfo"))
    algorithm, expected_digest = _signed_info(info)
    (x509_data,) = _exactly(key_info, ("X509Data",))
    (cert_node,) = _exactly(x509_data, ("X509Certificate",))
    cert = load_certificate(b64decode_strict(cert_node.text, "X509Certificate"))
    signature.verify(
        public_key_of(cert),
        algorithm,
        b64decode_strict(value_node.text, "SignatureValue"),
        c14n_exclusive(info),
    )
    _detach(sig)
    actual = hashlib.sha256(c14n_exclusive(root)).digest()
    if not hmac.compare_digest(actual, expected_digest):
        raise SignatureInvalid("the envelope was changed after signing (digest mismatch)")
    signer = trust.check(cert, at)
    envelope = decode_xml(root)
    if signer.party != envelope.sender:
        raise SenderMismatch(
            f"signed by {signer.party}, but the envelope's sender is {envelope.sender}",
            serial=signer.serial,
        )
    return VerifiedEnvelope(
        envelope, raw, digest(raw), WireFormat.XML, signer, payload_document(root)
    )


def _the_signature(root: Element) -> Element:
    found = list(root.iter(DS + "Signature"))
    if not found:
        raise SignatureInvalid("the envelope is not signed")
    if len(found) > 1:
        raise SignatureInvalid(f"{len(found)} signatures found; exactly one is allowed")
    sig = found[0]
    if sig.attrib:
        raise SignatureInvalid("ds:Signature carries no attributes in this profile")
    if sig.getparent() is not root or root[-1] is not sig:
        raise SignatureInvalid("the signature must be the last child of the envelope")
    return sig


def _signed_info(info: Element) -> tuple[signature.Algorithm, bytes]:
    c14n, method, reference = _exactly(
        info, ("CanonicalizationMethod", "SignatureMethod", "Reference"), _SIGNED_INFO_ATTRS
    )
    _algorithm(c14n, _C14N_METHODS)
    algorithm = SIGNATURE_METHODS[_algorithm(method, _SIGNATURE_METHOD_URIS)]
    if reference.get("URI") != "":
        raise SignatureInvalid('the reference must be URI="": the whole envelope')
    transforms, digest_method, digest_value = _exactly(
        reference, ("Transforms", "DigestMethod", "DigestValue"), _REFERENCE_ATTRS
    )
    for step in transforms:  # an off-list transform is an algorithm error, however many
        if step.tag == DS + "Transform":
            _algorithm(step, _TRANSFORM_URIS)
    steps = _exactly(transforms, ("Transform",) * len(TRANSFORMS), _TRANSFORM_ATTRS)
    if tuple(step.get("Algorithm") for step in steps) != TRANSFORMS:
        raise UnsupportedAlgorithm("transforms must be enveloped-signature then exclusive c14n")
    _algorithm(digest_method, _DIGEST_METHODS)
    return algorithm, b64decode_strict(digest_value.text, "DigestValue")


def _algorithm(node: Element, allowed: frozenset[str]) -> str:
    uri = node.get("Algorithm", "")
    if uri not in allowed:
        raise UnsupportedAlgorithm(f"{node.tag[len(DS) :]} algorithm {uri!r} is not allowed")
    return uri


def _exactly(
    parent: Element, names: Sequence[str], attributes: Mapping[str, frozenset[str]] | None = None
) -> list[Element]:
    children = list(parent)
    if [child.tag for child in children] != [DS + name for name in names]:
        found = ", ".join(str(child.tag).replace(DS, "ds:") for child in children) or "nothing"
        raise SignatureInvalid(
            f"ds:{parent.tag[len(DS) :]} must hold {', '.join(names)}; found {found}"
        )
    for node in (parent, *children):
        if len(node) and (node.text or "").strip():
            raise SignatureInvalid(f"stray text in ds:{node.tag[len(DS) :]}")
        if (node.tail or "").strip() and node is not parent:
            raise SignatureInvalid(f"stray text after ds:{node.tag[len(DS) :]}")
    for child, name in zip(children, names, strict=True):
        if set(child.attrib) - (attributes or {}).get(name, frozenset()):
            raise SignatureInvalid(f"unexpected attributes on ds:{child.tag[len(DS) :]}")
    return children


def _detach(sig: Element) -> None:
    # The enveloped-signature transform removes the element only; lxml's remove() would
    # also drop its tail text, and the digest would differ from xmlsec1's.
    parent = sig.getparent()
    assert parent is not None
    tail = sig.tail
    previous = sig.getprevious()
    parent.remove(sig)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
