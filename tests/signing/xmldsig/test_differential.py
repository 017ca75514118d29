"""Differential test: a corpus of profile variants through our verifier and `xmlsec1 --verify`.

The rule (issue 12): where the standard allows a choice, behave as xmlsec1 does. We may be
stricter than xmlsec1 (we refuse whole classes it accepts), but never accept what it
refuses. Each variant is signed with the test PKI, mutated, and re-signed where the
mutation touches what is signed, so that only the variant's own feature is on trial.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree  # noqa: TID251

from exchange._clock import FrozenClock
from exchange._hazmat import signature
from exchange._hazmat.xml import c14n_exclusive, element, sub_element
from exchange.envelope.model import Attachment
from exchange.exceptions import ExchangeError
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import seal, unseal
from exchange.signing.xmldsig.profile import (
    DS,
    DS_NS,
    ENVELOPED,
    EXC_C14N,
    SHA256,
    SIGNATURE_METHOD_OF,
)
from exchange.testing import ThrowawayPKI, make_envelope

from ._forge import detach, to_bytes, tree
from .test_interop import xmlsec_sign

pytestmark = pytest.mark.interop

EXC = "{" + EXC_C14N + "}"
Edit = Callable[[etree._Element], None]


def _b64(data: bytes, wrap: bool) -> str:
    text = base64.b64encode(data).decode()
    if not wrap:
        return text
    return "\n" + "\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n"


def sign(
    root: etree._Element,
    credentials: Credentials,
    *,
    prefix: str | None = "ds",
    indent: str = "",
    wrap: bool = False,
    edit_info: Edit | None = None,
    edit_signature: Edit | None = None,
) -> bytes:
    """Sign ``root`` as our profile does, with the free choices (prefix, layout) as given.

    ``edit_info`` changes SignedInfo before it is signed; ``edit_signature`` changes the rest
    of the signature afterwards (not covered by the signature value).
    """
    for old in root.findall(DS + "Signature"):
        detach(old)
    digest = hashlib.sha256(c14n_exclusive(root)).digest()
    sig = sub_element(root, DS + "Signature", nsmap={prefix: DS_NS})

    def add(
        parent: etree._Element, name: str, text: str | None = None, **attrib: str
    ) -> etree._Element:
        node = etree.SubElement(parent, DS + name, attrib)
        node.text = text
        return node

    info = add(sig, "SignedInfo")
    add(info, "CanonicalizationMethod", Algorithm=EXC_C14N)
    add(info, "SignatureMethod", Algorithm=SIGNATURE_METHOD_OF[credentials.algorithm])
    reference = add(info, "Reference", URI="")
    transforms = add(reference, "Transforms")
    add(transforms, "Transform", Algorithm=ENVELOPED)
    add(transforms, "Transform", Algorithm=EXC_C14N)
    add(reference, "DigestMethod", Algorithm=SHA256)
    add(reference, "DigestValue", _b64(digest, wrap))
    if indent:
        _indent(sig, indent)
    if edit_info is not None:
        edit_info(info)
    value = signature.sign(credentials.key, c14n_exclusive(info))
    add(sig, "SignatureValue", _b64(value, wrap))
    key_info = add(sig, "KeyInfo")
    add(add(key_info, "X509Data"), "X509Certificate", _b64(credentials.certificate_der, wrap))
    if indent:
        _indent(sig, indent)
    if edit_signature is not None:
        edit_signature(sig)
    return to_bytes(root)


def _indent(sig: etree._Element, unit: str) -> None:
    # Whitespace between elements only: leaves that hold text keep it.
    for node in sig.iter():
        depth = sum(1 for _ in node.iterancestors()) - 1
        if len(node):
            node.text = "\n" + unit * (depth + 1)
            node[-1].tail = "\n" + unit * depth
        if node is not sig and node.getnext() is not None:
            node.tail = "\n" + unit * depth


def _child(path: str) -> Callable[[etree._Element], etree._Element]:
    def find(parent: etree._Element) -> etree._Element:
        found = parent.find(path.replace("ds:", DS))
        assert found is not None, path
        return found

    return find


def _add(path: str, tag: str, text: str | None = None, **attrib: str) -> Edit:
    def apply(parent: etree._Element) -> None:
        node = etree.SubElement(_child(path)(parent) if path else parent, tag, attrib)
        node.text = text

    return apply


def _set(path: str, name: str, value: str) -> Edit:
    def apply(parent: etree._Element) -> None:
        (_child(path)(parent) if path else parent).set(name, value)

    return apply


def _text(path: str, text: str) -> Edit:
    def apply(parent: etree._Element) -> None:
        node = _child(path)(parent) if path else parent
        node.text = text + (node.text or "")

    return apply


C14N = "ds:CanonicalizationMethod"
METHOD = "ds:SignatureMethod"
REFERENCE = "ds:Reference"
ENVELOPED_STEP = "ds:Reference/ds:Transforms/ds:Transform[1]"
C14N_STEP = "ds:Reference/ds:Transforms/ds:Transform[2]"


def corpus(pki: ThrowawayPKI, clock: FrozenClock, folder: Path) -> Iterator[tuple[str, bytes]]:
    """The variants: free choices of the standard first, then off-profile features."""
    credentials = pki.credentials("single-center")
    sealed = seal(make_envelope(clock), credentials)
    awkward = make_envelope(
        clock,
        payload={"note": "a < b & c > d \"q\" 'single' \u041a\u0430\u0437\u0430\u043d\r\n\t"},
        attachments=(
            Attachment(
                name='plan & "scan".pdf',
                media_type="application/pdf",
                size=1,
                sha256="ef" * 32,
                location="attachments/ef",
            ),
        ),
    )

    def signed(**options: object) -> bytes:
        return sign(tree(sealed), credentials, **options)  # type: ignore[arg-type]

    # --- choices the standard leaves open: we accept these, so xmlsec1 must as well
    yield "as-sealed", sealed
    yield "awkward-text-and-attachments", seal(awkward, credentials)
    yield "signed-by-xmlsec1", xmlsec_sign(pki, "single-center", awkward, folder)
    yield "prefix-dsig", signed(prefix="dsig")
    yield "default-namespace", signed(prefix=None)
    yield "indented", signed(indent="  ")
    yield "indented-with-tabs-and-crlf", signed(indent="\t\r")
    yield "base64-wrapped", signed(wrap=True)
    yield "indented-and-wrapped", signed(indent="    ", wrap=True)
    root = tree(sealed)
    nsmap: dict[str | None, str] = dict(root.nsmap)
    nsmap["u"] = "urn:unused"
    extra = element(str(root.tag), nsmap, version=str(root.get("version")))
    extra.extend(list(root))
    yield "unused-namespace-on-root", sign(extra, credentials)
    # --- off the profile: we refuse these, whatever xmlsec1 says
    for name, edit in {
        "inclusive-namespaces-default": _add(
            C14N, EXC + "InclusiveNamespaces", PrefixList="#default"
        ),
        "inclusive-namespaces-on-transform": _add(
            C14N_STEP, EXC + "InclusiveNamespaces", PrefixList="#default s"
        ),
        "hmac-output-length": _add(METHOD, DS + "HMACOutputLength", "160"),
        "xpath-in-enveloped": _add(ENVELOPED_STEP, DS + "XPath", "true()"),
        "reference-id": _set(REFERENCE, "Id", "r1"),
        "reference-type": _set(REFERENCE, "Type", "http://www.w3.org/2000/09/xmldsig#Object"),
        "signed-info-id": _set("", "Id", "si"),
        "text-in-c14n-method": _text(C14N, "x"),
        "text-in-signed-info": _text("", "x"),
        "reference-uri-fragment": _set(REFERENCE, "URI", "#x"),
        "c14n-with-comments": _set(C14N, "Algorithm", EXC_C14N + "WithComments"),
        "inclusive-c14n-transform": _set(
            C14N_STEP, "Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
        ),
        "foreign-child-of-signed-info": _add("", "{urn:other}x"),
    }.items():
        yield name, signed(edit_info=edit)
    for name, edit in {
        "key-name": _add("ds:KeyInfo", DS + "KeyName", "single-center"),
        "object": _add("", DS + "Object", "data"),
        "signature-id": _set("", "Id", "sig"),
        "text-in-key-info": _text("ds:KeyInfo", "x"),
        "second-certificate": _add(
            "ds:KeyInfo/ds:X509Data",
            DS + "X509Certificate",
            base64.b64encode(credentials.certificate_der).decode(),
        ),
    }.items():
        yield name, signed(edit_signature=edit)
    yield "comment-in-payload", sealed.replace(b"<payload>", b"<payload><!--c-->")
    yield "digest-wrong", sealed.replace(b"Ivan Petrov", b"Ivan Petrow")
    yield (
        "namespaces-over-limit",
        sealed.replace(
            b"<envelope ",
            b"<envelope " + b" ".join(b'xmlns:p%d="urn:p:%d"' % (i, i) for i in range(20)) + b" ",
        ),
    )


def xmlsec1_accepts(pki: ThrowawayPKI, document: Path, clock: FrozenClock) -> bool:
    """Whether ``xmlsec1 --verify`` against the test root accepts ``document``."""
    done = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--trusted-pem",
            str(pki.path / "root.pem"),
            "--verification-time",
            clock.now().strftime("%Y-%m-%d %H:%M:%S"),
            str(document),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


def we_accept(raw: bytes, trust: TrustStore, clock: FrozenClock) -> bool:
    """Whether our verifier accepts ``raw`` (anything but an ExchangeError is a bug here)."""
    try:
        unseal(raw, trust, clock=clock)
    except ExchangeError:
        return False
    return True


def test_we_never_accept_what_xmlsec1_refuses(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """Over the whole corpus: accepted by us implies accepted by xmlsec1."""
    verdicts: dict[str, tuple[bool, bool]] = {}
    for name, raw in corpus(pki, clock, tmp_path):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(raw)
        verdicts[name] = (we_accept(raw, trust, clock), xmlsec1_accepts(pki, path, clock))
    too_lenient = [name for name, (ours, theirs) in verdicts.items() if ours and not theirs]
    assert too_lenient == [], f"we accept what xmlsec1 refuses: {too_lenient}"
    # The corpus must exercise both sides, or the property above holds vacuously.
    choices = [
        "as-sealed",
        "awkward-text-and-attachments",
        "signed-by-xmlsec1",
        "prefix-dsig",
        "default-namespace",
        "indented",
        "indented-with-tabs-and-crlf",
        "base64-wrapped",
        "indented-and-wrapped",
        "unused-namespace-on-root",
    ]
    assert {name: verdicts[name] for name in choices} == dict.fromkeys(choices, (True, True))
    refused = {name for name, (ours, _) in verdicts.items() if not ours}
    assert refused == set(verdicts) - set(choices)
