"""Verify an XML envelope against our XML-DSig profile and the trust store.

The profile: one ``ds:Signature``, the last child of the envelope; one ``Reference`` with
``URI=""`` (the whole document) and exactly the transforms enveloped-signature then
exclusive c14n; SHA-256; ECDSA P-256 or RSA with SHA-256; the signer's certificate as the
only thing in ``KeyInfo`` (the whole shape: ``profile.SIGNATURE``). Anything else is refused
before any key is used, and the document's structural limits are checked before anything is
canonicalised.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from exchange._hazmat import signature
from exchange._hazmat.xml import Element, c14n_exclusive, parse
from exchange._hazmat.xml_limits import check_limits
from exchange.codec.xml import ENVELOPE_NS, decode_xml, payload_document
from exchange.exceptions import Malformed, SenderMismatch, SignatureInvalid
from exchange.pki.trust import TrustStore
from exchange.signing._certs import b64decode_strict, load_certificate, public_key_of
from exchange.signing.base import VerifiedEnvelope, WireFormat, digest
from exchange.signing.xmldsig.conformance import check_profile
from exchange.signing.xmldsig.profile import DS, SIGNATURE_METHODS


def verify_xml(raw: bytes, trust: TrustStore, at: datetime, *, max_size: int) -> VerifiedEnvelope:
    """Verify a signed XML envelope; return exactly what was signed.

    Raises:
        TooLarge, Malformed: the bytes are not an acceptable XML envelope.
        SignatureInvalid, UnsupportedAlgorithm: the signature is missing, off-profile or wrong.
        TrustError subclasses: the signer certificate is not good at ``at``.
        SenderMismatch (sender-mismatch): signed by another party than the sender.
    """
    root = parse(raw, max_size=max_size)
    check_limits(root, len(raw))  # before anything canonicalises: bounded cost
    if root.tag != "{" + ENVELOPE_NS + "}envelope":
        raise Malformed(f"root element {root.tag} is not an exchange envelope")
    sig = _the_signature(root)
    found = check_profile(sig)
    algorithm = SIGNATURE_METHODS[found["SignatureMethod"].get("Algorithm", "")]
    expected_digest = b64decode_strict(found["DigestValue"].text, "DigestValue")
    cert = load_certificate(b64decode_strict(found["X509Certificate"].text, "X509Certificate"))
    signature.verify(
        public_key_of(cert),
        algorithm,
        b64decode_strict(found["SignatureValue"].text, "SignatureValue"),
        c14n_exclusive(found["SignedInfo"]),
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
