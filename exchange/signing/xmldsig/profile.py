"""The XML-DSig profile: which algorithms and which shape of signature we accept."""

from __future__ import annotations

from exchange._hazmat.signature import Algorithm

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS = "{" + DS_NS + "}"

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": Algorithm.ES256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": Algorithm.RS256,
}
SIGNATURE_METHOD_OF = {algorithm: uri for uri, algorithm in SIGNATURE_METHODS.items()}
TRANSFORMS = (ENVELOPED, EXC_C14N)
