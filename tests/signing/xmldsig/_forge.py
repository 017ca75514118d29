"""Take signed XML envelopes apart and put them back together, on- and off-profile."""

from __future__ import annotations

import base64
import hashlib

from lxml import etree  # noqa: TID251

from exchange._hazmat import signature
from exchange._hazmat.xml import Element, c14n_exclusive, serialize, sub_element
from exchange.codec.xml import ENVELOPE_NS
from exchange.pki.credentials import Credentials
from exchange.signing.xmldsig.profile import (
    DS,
    DS_NS,
    EXC_C14N,
    SHA256,
    SIGNATURE_METHOD_OF,
    TRANSFORMS,
)

__all__ = [
    "E",
    "child",
    "detach",
    "resign",
    "resign_signed_info",
    "signature_of",
    "to_bytes",
    "tree",
]

E = "{" + ENVELOPE_NS + "}"


def tree(raw: bytes) -> Element:
    """Parse trusted test bytes with plain lxml (no hardening: the input is ours)."""
    return etree.fromstring(raw)


def to_bytes(root: Element) -> bytes:
    """Serialise as our signer does (UTF-8 with an XML declaration)."""
    return serialize(root)


def child(root: Element, name: str) -> Element:
    """The envelope's child element ``name`` (in the envelope namespace)."""
    found = root.find(E + name)
    assert found is not None, name
    return found


def signature_of(root: Element) -> Element:
    """The envelope's ``ds:Signature`` element."""
    found = root.find(DS + "Signature")
    assert found is not None
    return found


def detach(node: Element) -> Element:
    """Remove ``node`` from its parent, keeping its tail text in the document."""
    parent = node.getparent()
    assert parent is not None
    previous = node.getprevious()
    tail = node.tail
    parent.remove(node)
    node.tail = None
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    return node


def resign(root: Element, credentials: Credentials) -> bytes:
    """Drop any ``ds:Signature`` of ``root`` and sign it again, exactly as our signer does.

    Used to make a document whose signature is valid but whose content is off the rules.
    """
    for old in root.findall(DS + "Signature"):
        detach(old)
    digest_value = base64.b64encode(hashlib.sha256(c14n_exclusive(root)).digest()).decode()
    sig = sub_element(root, DS + "Signature", nsmap={"ds": DS_NS})
    info = sub_element(sig, DS + "SignedInfo")
    sub_element(info, DS + "CanonicalizationMethod", Algorithm=EXC_C14N)
    sub_element(info, DS + "SignatureMethod", Algorithm=SIGNATURE_METHOD_OF[credentials.algorithm])
    reference = sub_element(info, DS + "Reference", URI="")
    transforms = sub_element(reference, DS + "Transforms")
    for uri in TRANSFORMS:
        sub_element(transforms, DS + "Transform", Algorithm=uri)
    sub_element(reference, DS + "DigestMethod", Algorithm=SHA256)
    sub_element(reference, DS + "DigestValue", digest_value)
    value = signature.sign(credentials.key, c14n_exclusive(info))
    sub_element(sig, DS + "SignatureValue", base64.b64encode(value).decode())
    x509_data = sub_element(sub_element(sig, DS + "KeyInfo"), DS + "X509Data")
    sub_element(
        x509_data, DS + "X509Certificate", base64.b64encode(credentials.certificate_der).decode()
    )
    return to_bytes(root)


def resign_signed_info(root: Element, credentials: Credentials) -> bytes:
    """Re-sign the existing (edited) ``ds:SignedInfo`` without touching anything else."""
    sig = signature_of(root)
    info = sig.find(DS + "SignedInfo")
    value_node = sig.find(DS + "SignatureValue")
    assert info is not None
    assert value_node is not None
    value_node.text = base64.b64encode(
        signature.sign(credentials.key, c14n_exclusive(info))
    ).decode()
    return to_bytes(root)
