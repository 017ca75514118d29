"""The XML-DSig profile: which algorithms and which shape of signature we accept.

``SIGNATURE`` is the whole profile as a tree: every element, every attribute with its allowed
values, and where text may stand. One rule: what it does not name is refused
(``InclusiveNamespaces``, ``HMACOutputLength``, an ``XPath`` child, ``Id`` attributes, text
inside element-only or empty elements, ``KeyName``, ``Object`` ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

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

ALGORITHM = "Algorithm"


@dataclass(frozen=True)
class Shape:
    """One ``ds:`` element of the profile.

    Attributes:
        name: local name in the XML-DSig namespace.
        attributes: every attribute it carries (all required) and the values each may take.
        children: exactly these child elements, in this order.
        text: True for a leaf that holds base64 text; otherwise only whitespace may stand
            between (or in place of) its children.
    """

    name: str
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    children: tuple[Shape, ...] = ()
    text: bool = False

    def walk(self) -> Iterator[Shape]:
        """This shape and every shape below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def _algorithm(*uris: str) -> Mapping[str, frozenset[str]]:
    return {ALGORITHM: frozenset(uris)}


SIGNATURE = Shape(
    "Signature",
    children=(
        Shape(
            "SignedInfo",
            children=(
                Shape("CanonicalizationMethod", _algorithm(EXC_C14N)),
                Shape("SignatureMethod", _algorithm(*SIGNATURE_METHODS)),
                Shape(
                    "Reference",
                    {"URI": frozenset({""})},  # the whole envelope, nothing else
                    children=(
                        Shape(
                            "Transforms",
                            children=tuple(
                                Shape("Transform", _algorithm(uri)) for uri in TRANSFORMS
                            ),
                        ),
                        Shape("DigestMethod", _algorithm(SHA256)),
                        Shape("DigestValue", text=True),
                    ),
                ),
            ),
        ),
        Shape("SignatureValue", text=True),
        Shape(
            "KeyInfo",
            children=(Shape("X509Data", children=(Shape("X509Certificate", text=True),)),),
        ),
    ),
)


def _algorithms_by_element() -> dict[str, frozenset[str]]:
    allowed: dict[str, frozenset[str]] = {}
    for shape in SIGNATURE.walk():
        if ALGORITHM in shape.attributes:
            allowed[shape.name] = allowed.get(shape.name, frozenset()) | shape.attributes[ALGORITHM]
    return allowed


ALGORITHMS = _algorithms_by_element()
"""Every algorithm URI each kind of element may name anywhere in the profile."""
