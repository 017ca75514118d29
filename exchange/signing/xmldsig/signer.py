"""Seal an envelope as XML with an enveloped XML-DSig signature over the whole document."""

from __future__ import annotations

import base64
import hashlib

from exchange._hazmat import signature
from exchange._hazmat.xml import c14n_exclusive, serialize, sub_element
from exchange._hazmat.xml_limits import check_limits
from exchange.codec.xml import encode_xml
from exchange.envelope.model import Envelope
from exchange.pki.credentials import Credentials
from exchange.signing.xmldsig.profile import (
    DS,
    DS_NS,
    EXC_C14N,
    SHA256,
    SIGNATURE_METHOD_OF,
    TRANSFORMS,
)


def sign_xml(envelope: Envelope, credentials: Credentials) -> bytes:
    """Return the signed XML document of ``envelope``.

    Raises:
        TooComplex (too-complex): the document is past a limit every verifier enforces.
    """
    root = encode_xml(envelope)
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
    signed = serialize(root)
    # A peer would refuse it: better the sender hears it now, from its own seal() call.
    check_limits(root, len(signed))
    return signed
