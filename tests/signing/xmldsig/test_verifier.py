"""The XML-DSig verifier: strict, profile-bound, and exact about what it returns."""

from __future__ import annotations

import base64
import copy
import hashlib
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree  # noqa: TID251

from exchange._clock import FrozenClock
from exchange._hazmat.xml import c14n_exclusive
from exchange.codec.xml import payload_from_element
from exchange.envelope.model import Attachment, Envelope, Fault, Kind
from exchange.exceptions import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUnknown,
    ExchangeError,
    Malformed,
    RevocationUnknown,
    SenderMismatch,
    SignatureInvalid,
    TooLarge,
    UnsupportedAlgorithm,
)
from exchange.pki.authority import KeyType
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import VerifiedEnvelope, WireFormat, digest, seal, unseal
from exchange.signing.xmldsig.profile import DS, DS_NS, ENVELOPED, EXC_C14N, SHA256
from exchange.signing.xmldsig.signer import sign_xml
from exchange.signing.xmldsig.verifier import verify_xml
from exchange.testing import ThrowawayPKI, make_envelope

from ._forge import E, child, detach, resign, resign_signed_info, signature_of, to_bytes, tree

MAX_SIZE = 1024 * 1024

ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
INCLUSIVE_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

Check = Callable[[bytes], VerifiedEnvelope]


@pytest.fixture
def envelope(clock: FrozenClock) -> Envelope:
    """A request from single-center to improvement, created at the frozen time."""
    return make_envelope(clock)


@pytest.fixture
def signer(pki: ThrowawayPKI) -> Credentials:
    """single-center's credentials in the session PKI."""
    return pki.credentials("single-center")


@pytest.fixture
def sealed(envelope: Envelope, signer: Credentials) -> bytes:
    """The envelope sealed as XML."""
    return seal(envelope, signer)


@pytest.fixture
def check(trust: TrustStore, clock: FrozenClock) -> Check:
    """unseal() against the session trust store at the frozen time."""

    def run(raw: bytes) -> VerifiedEnvelope:
        return unseal(raw, trust, clock=clock)

    return run


def refused(check: Check, raw: bytes, error: type[ExchangeError], code: str) -> ExchangeError:
    """Assert that ``raw`` is refused with exactly ``error`` (not a subclass) and ``code``."""
    with pytest.raises(error) as info:
        check(raw)
    assert type(info.value) is error, info.value
    assert info.value.code == code
    return info.value


def transforms_of(root: etree._Element) -> etree._Element:
    """The ``ds:Transforms`` element of the signature's only reference."""
    found = signature_of(root).find(f"{DS}SignedInfo/{DS}Reference/{DS}Transforms")
    assert found is not None
    return found


def signed_info_child(root: etree._Element, path: str) -> etree._Element:
    """An element below ``ds:SignedInfo`` by a ds-prefixed path."""
    found = signature_of(root).find(f"{DS}SignedInfo/" + path.replace("ds:", DS))
    assert found is not None, path
    return found


# --- the good cases ---------------------------------------------------------------------


def test_round_trip(check: Check, sealed: bytes, envelope: Envelope) -> None:
    """A sealed envelope verifies to exactly the envelope signed, its bytes and their SHA-256."""
    verified = check(sealed)
    assert verified.envelope == envelope
    assert verified.raw == sealed
    assert verified.digest == hashlib.sha256(sealed).hexdigest() == digest(sealed)
    assert verified.format is WireFormat.XML
    assert verified.signer.party == "single-center"


def test_round_trip_with_attachments(check: Check, signer: Credentials, clock: FrozenClock) -> None:
    """An envelope with attachments (and a payload) verifies to exactly what was signed."""
    envelope = make_envelope(
        clock,
        attachments=(
            Attachment(
                name="plan.pdf",
                media_type="application/pdf",
                size=123456,
                sha256="ab" * 32,
                location="attachments/ab",
            ),
            Attachment(
                name="photo 1.png",
                media_type="image/png",
                size=0,
                sha256="cd" * 32,
                location="attachments/cd",
            ),
        ),
    )
    raw = seal(envelope, signer)
    verified = check(raw)
    assert verified.envelope == envelope
    assert verified.digest == hashlib.sha256(raw).hexdigest()


def test_round_trip_fault(
    check: Check, pki: ThrowawayPKI, sealed: bytes, clock: FrozenClock
) -> None:
    """A fault answering a request (signed by the answering party) verifies to what was signed."""
    request = check(sealed).envelope
    fault = make_envelope(
        clock,
        kind=Kind.FAULT,
        sender="improvement",
        recipient="single-center",
        correlation_id=request.message_id,
        request_digest=digest(sealed),
        payload=None,
        fault=Fault(code="invalid-content", text="trees[0].count: not a number <&>"),
    )
    raw = seal(fault, pki.credentials("improvement"))
    verified = check(raw)
    assert verified.envelope == fault
    assert verified.signer.party == "improvement"
    assert verified.digest == hashlib.sha256(raw).hexdigest()


def test_verify_xml_directly(trust: TrustStore, sealed: bytes, clock: FrozenClock) -> None:
    """verify_xml gives the same envelope and digest as unseal for an XML envelope."""
    verified = verify_xml(sealed, trust, clock.now(), max_size=MAX_SIZE)
    assert verified == unseal(sealed, trust, clock=clock)
    assert verified.digest == hashlib.sha256(sealed).hexdigest()


def test_the_payload_document_is_the_verified_trees(
    trust: TrustStore, sealed: bytes, clock: FrozenClock
) -> None:
    """The payload element handed on for the schema check is the one the envelope was read from."""
    verified = unseal(sealed, trust, clock=clock)
    document = verified.payload_document
    assert document is not None
    assert document.getparent() is not None  # inside the verified tree, not a re-encoding
    service = verified.envelope.service
    read = payload_from_element(document, service.code, service.version, Kind.REQUEST)
    assert read == verified.envelope.payload


def test_rsa_certificate_signs_and_verifies(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """An RSA party certificate signs with rsa-sha256, which the verifier accepts."""
    credentials = fresh_pki.issue("single-center", KeyType.RSA)
    envelope = make_envelope(clock)
    raw = seal(envelope, credentials)
    assert RSA_SHA256.encode() in raw
    verified = unseal(raw, fresh_pki.trust(), clock=clock)
    assert verified.envelope == envelope
    assert verified.signer.serial == credentials.certificate.serial_number


def test_sealed_document_is_exactly_the_profile(sealed: bytes) -> None:
    """Our signer writes one last-child ds:Signature with exactly the profile's algorithms."""
    root = tree(sealed)
    sig = signature_of(root)
    assert root[-1] is sig
    assert [node.get("Algorithm") for node in sig.iter(DS + "Transform")] == [
        ENVELOPED,
        EXC_C14N,
    ]
    assert signed_info_child(root, "ds:SignatureMethod").get("Algorithm") == ECDSA_SHA256
    assert signed_info_child(root, "ds:Reference/ds:DigestMethod").get("Algorithm") == SHA256


# --- tampering with what was signed -----------------------------------------------------

TAMPERS = {
    "payload-text": (b"<s:name>Ivan Petrov</s:name>", b"<s:name>Ivan Petrow</s:name>"),
    "payload-count": (b"<s:count>3</s:count>", b"<s:count>30</s:count>"),
    "recipient": (b"<recipient>improvement</recipient>", b"<recipient>land-property</recipient>"),
    "kind": (b"<kind>request</kind>", b"<kind>cancel</kind>"),
    "expiresAt": (
        b"<expiresAt>2026-01-16T09:00:00Z</expiresAt>",
        b"<expiresAt>2027-01-16T09:00:00Z</expiresAt>",
    ),
    "sender": (b"<sender>single-center</sender>", b"<sender>architecture</sender>"),
    "test-flag": (b"<test>false</test>", b"<test>true</test>"),
    "service-version": (b'version="1"/>', b'version="2"/>'),
    "caseId": (b"<caseId>KZN-2026-000001</caseId>", b"<caseId>KZN-2026-000002</caseId>"),
    "whitespace-between-elements": (b"</kind><service", b"</kind>\n<service"),
}


@pytest.mark.parametrize(("old", "new"), TAMPERS.values(), ids=TAMPERS.keys())
def test_tampered_content_is_refused(check: Check, sealed: bytes, old: bytes, new: bytes) -> None:
    """Any change to the signed envelope after signing breaks the digest: signature-invalid."""
    assert sealed.count(old) == 1
    refused(check, sealed.replace(old, new), SignatureInvalid, "signature-invalid")


def test_tampered_signature_value_is_refused(check: Check, sealed: bytes) -> None:
    """One flipped bit in SignatureValue: signature-invalid."""
    root = tree(sealed)
    node = signature_of(root).find(DS + "SignatureValue")
    assert node is not None
    assert node.text is not None
    value = bytearray(base64.b64decode(node.text))
    value[10] ^= 0x01
    node.text = base64.b64encode(bytes(value)).decode()
    refused(check, to_bytes(root), SignatureInvalid, "signature-invalid")


def test_tampered_digest_value_is_refused(check: Check, sealed: bytes, signer: Credentials) -> None:
    """A changed DigestValue, SignedInfo properly re-signed, does not match: signature-invalid."""
    root = tree(sealed)
    signed_info_child(root, "ds:Reference/ds:DigestValue").text = base64.b64encode(
        b"\x00" * 32
    ).decode()
    refused(check, resign_signed_info(root, signer), SignatureInvalid, "signature-invalid")


def test_certificate_swapped_in_key_info_is_refused(
    check: Check, sealed: bytes, pki: ThrowawayPKI
) -> None:
    """Another party's valid certificate put into KeyInfo does not verify the signature."""
    other = pki.credentials("improvement")
    root = tree(sealed)
    node = signature_of(root).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert node is not None
    node.text = base64.b64encode(other.certificate_der).decode()
    refused(check, to_bytes(root), SignatureInvalid, "signature-invalid")


# --- the signature element: missing, duplicated, moved ---------------------------------


def test_unsigned_envelope_is_refused(check: Check, sealed: bytes) -> None:
    """An envelope with its ds:Signature removed is not signed: signature-invalid."""
    root = tree(sealed)
    detach(signature_of(root))
    refused(check, to_bytes(root), SignatureInvalid, "signature-invalid")


def _duplicate_appended(root: etree._Element) -> None:
    root.append(copy.deepcopy(signature_of(root)))


def _duplicate_in_payload(root: etree._Element) -> None:
    child(root, "payload")[0].append(copy.deepcopy(signature_of(root)))


def _duplicate_first(root: etree._Element) -> None:
    root.insert(0, copy.deepcopy(signature_of(root)))


def _moved_first(root: etree._Element) -> None:
    root.insert(0, detach(signature_of(root)))


def _moved_before_payload(root: etree._Element) -> None:
    child(root, "payload").addprevious(detach(signature_of(root)))


def _moved_into_payload(root: etree._Element) -> None:
    child(root, "payload")[0].append(detach(signature_of(root)))


def _moved_into_sender(root: etree._Element) -> None:
    child(root, "sender").append(detach(signature_of(root)))


SIGNATURE_PLACEMENTS: dict[str, Callable[[etree._Element], None]] = {
    "duplicate-appended": _duplicate_appended,
    "duplicate-inside-payload": _duplicate_in_payload,
    "duplicate-first-child": _duplicate_first,
    "moved-first-child": _moved_first,
    "moved-before-payload": _moved_before_payload,
    "moved-inside-payload": _moved_into_payload,
    "moved-inside-sender": _moved_into_sender,
}


@pytest.mark.parametrize("recipe", SIGNATURE_PLACEMENTS.values(), ids=SIGNATURE_PLACEMENTS.keys())
def test_signature_duplicated_or_moved_is_refused(
    check: Check, sealed: bytes, recipe: Callable[[etree._Element], None]
) -> None:
    """Exactly one ds:Signature, the envelope's last child, is allowed: else signature-invalid."""
    root = tree(sealed)
    recipe(root)
    refused(check, to_bytes(root), SignatureInvalid, "signature-invalid")


def test_signature_with_attribute_is_refused(check: Check, sealed: bytes) -> None:
    """An Id on ds:Signature (the hook of URI="#id" references): signature-invalid."""
    root = tree(sealed)
    signature_of(root).set("Id", "sig")
    refused(check, to_bytes(root), SignatureInvalid, "signature-invalid")


# --- signature wrapping -----------------------------------------------------------------


def _forged(sealed: bytes) -> etree._Element:
    """The signed envelope, unsigned, addressed elsewhere and with another payload."""
    forged = tree(sealed)
    detach(signature_of(forged))
    child(forged, "recipient").text = "land-property"
    name = forged.find(".//{*}name")
    assert name is not None
    name.text = "Mallory"
    return forged


def wrap_original_in_forged_payload(sealed: bytes) -> bytes:
    """The forged envelope is the document; the original signed one hides in its payload."""
    forged = _forged(sealed)
    child(forged, "payload")[0].append(tree(sealed))
    return to_bytes(forged)


def wrap_forged_in_original_payload(sealed: bytes) -> bytes:
    """The original signed document with a forged envelope added to its payload."""
    root = tree(sealed)
    child(root, "payload")[0].append(_forged(sealed))
    return to_bytes(root)


def forged_with_original_signature(sealed: bytes) -> bytes:
    """A forged envelope carrying the original ds:Signature as its last child."""
    forged = _forged(sealed)
    forged.append(signature_of(tree(sealed)))
    return to_bytes(forged)


def original_in_signature_object(sealed: bytes) -> bytes:
    """The forged envelope with the signature, whose ds:Object holds the original content."""
    forged = _forged(sealed)
    sig = signature_of(tree(sealed))
    holder = etree.SubElement(sig, DS + "Object")
    original = tree(sealed)
    detach(signature_of(original))
    holder.append(original)
    forged.append(sig)
    return to_bytes(forged)


def original_under_new_root_element(sealed: bytes) -> bytes:
    """The original signed envelope inside a new envelope root holding forged header fields."""
    forged = _forged(sealed)
    outer = etree.Element(E + "envelope", version="1")
    for node in forged:
        outer.append(copy.deepcopy(node))
    outer.append(tree(sealed))
    return to_bytes(outer)


WRAPPINGS: dict[str, Callable[[bytes], bytes]] = {
    "original-inside-forged-payload": wrap_original_in_forged_payload,
    "forged-inside-original-payload": wrap_forged_in_original_payload,
    "forged-with-original-signature": forged_with_original_signature,
    "original-inside-ds-object": original_in_signature_object,
    "original-appended-to-new-envelope-root": original_under_new_root_element,
}


@pytest.mark.parametrize("wrap", WRAPPINGS.values(), ids=WRAPPINGS.keys())
def test_signature_wrapping_is_refused(
    check: Check, sealed: bytes, wrap: Callable[[bytes], bytes]
) -> None:
    """A second envelope hidden next to the signed one is refused as signature-invalid.

    The verifier finds every ds:Signature in the document and allows one, as the last
    child of the root it processes, with a reference to the whole document: a wrapped
    signature is either in the wrong place, or its digest does not match the document.
    """
    refused(check, wrap(sealed), SignatureInvalid, "signature-invalid")


def test_signed_envelope_inside_foreign_root_is_malformed(check: Check, sealed: bytes) -> None:
    """A signed envelope wrapped in a non-envelope root is malformed (the root is checked first)."""
    wrapper = etree.Element("wrapper")
    wrapper.append(tree(sealed))
    refused(check, to_bytes(wrapper), Malformed, "malformed")


# --- comments, processing instructions, whitespace --------------------------------------


def test_comment_injection_keeps_the_digest_but_is_malformed(check: Check, sealed: bytes) -> None:
    """A comment splitting a signed value keeps the c14n digest intact, but is malformed."""
    tampered = sealed.replace(
        b"<sender>single-center</sender>", b"<sender>single<!-- -->-center</sender>"
    )
    original, changed = tree(sealed), tree(tampered)
    detach(signature_of(original))
    detach(signature_of(changed))
    assert c14n_exclusive(original) == c14n_exclusive(changed)  # the signature alone would pass
    refused(check, tampered, Malformed, "malformed")


COMMENTS_AND_PIS = {
    "comment-in-recipient": (b"<recipient>improvement", b"<recipient><!--x-->improvement"),
    "comment-in-payload": (b"<s:address>", b"<!-- hi --><s:address>"),
    "comment-in-signature": (b"<ds:SignedInfo>", b"<ds:SignedInfo><!-- hi -->"),
    "comment-before-root": (b"?>\n<envelope", b"?>\n<!-- hi --><envelope"),
    "comment-after-root": (b"</envelope>", b"</envelope><!-- hi -->"),
    "pi-in-payload": (b"<s:address>", b"<?evil data?><s:address>"),
    "pi-before-root": (b"?>\n<envelope", b"?>\n<?xml-stylesheet href='x'?><envelope"),
    "pi-after-root": (b"</envelope>", b"</envelope><?evil?>"),
}


@pytest.mark.parametrize(("old", "new"), COMMENTS_AND_PIS.values(), ids=COMMENTS_AND_PIS.keys())
def test_comments_and_processing_instructions_are_malformed(
    check: Check, sealed: bytes, old: bytes, new: bytes
) -> None:
    """Comments and processing instructions anywhere in the document: malformed."""
    assert sealed.count(old) == 1
    refused(check, sealed.replace(old, new), Malformed, "malformed")


def _set_text(name: str, value: str) -> Callable[[etree._Element], None]:
    def apply(root: etree._Element) -> None:
        child(root, name).text = value

    return apply


def _set_service_code(root: etree._Element) -> None:
    child(root, "service").set("code", " tree-felling-permit")


WHITESPACE = {
    "sender-padded": _set_text("sender", " single-center "),
    "sender-newline": _set_text("sender", "single-center\n"),
    "recipient-leading": _set_text("recipient", " improvement"),
    "kind-trailing": _set_text("kind", "request "),
    "messageId-leading": _set_text("messageId", "\tmsg-1"),
    "expiresAt-padded": _set_text("expiresAt", " 2026-01-16T09:00:00Z "),
    "caseId-trailing": _set_text("caseId", "KZN-2026-000001 "),
    "test-true-padded": _set_text("test", " true "),
    "service-code-attribute": _set_service_code,
}


@pytest.mark.parametrize("recipe", WHITESPACE.values(), ids=WHITESPACE.keys())
def test_whitespace_around_a_signed_value_is_malformed(
    check: Check, sealed: bytes, signer: Credentials, recipe: Callable[[etree._Element], None]
) -> None:
    """Whitespace around a header value, even re-signed, is malformed: never trimmed or misread."""
    root = tree(sealed)
    recipe(root)
    refused(check, resign(root, signer), Malformed, "malformed")


def test_resign_helper_makes_valid_signatures(
    check: Check, sealed: bytes, signer: Credentials, envelope: Envelope
) -> None:
    """The helper's re-signing yields valid signatures (so the refusals above are real)."""
    assert check(resign(tree(sealed), signer)).envelope == envelope


# --- DTDs, entities, encodings, sizes ---------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file an XXE would try to read."""
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-7f3a9c")
    return path


def _with_doctype(sealed: bytes, doctype: str, sender: str = "single-center") -> str:
    body = sealed.decode().split("?>", 1)[1]
    body = body.replace("<sender>single-center</sender>", f"<sender>{sender}</sender>")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + doctype + body


def _xxe_documents(sealed: bytes, secret: Path) -> dict[str, bytes]:
    uri = secret.as_uri()
    entity = f'<!DOCTYPE envelope [<!ENTITY xxe SYSTEM "{uri}">]>'
    parameter = f'<!DOCTYPE envelope [<!ENTITY % p SYSTEM "{uri}"> %p;]>'
    external = f'<!DOCTYPE envelope SYSTEM "{uri}">'
    utf16 = _with_doctype(sealed, entity, "&xxe;").replace('"UTF-8"', '"UTF-16"')
    return {
        "external-entity": _with_doctype(sealed, entity, "&xxe;").encode(),
        "parameter-entity": _with_doctype(sealed, parameter).encode(),
        "system-dtd": _with_doctype(sealed, external).encode(),
        "lowercase-keyword": _with_doctype(sealed, entity.replace("DOCTYPE", "doctype")).encode(),
        "utf-16-external-entity": utf16.encode("utf-16-le"),
    }


XXE_KINDS = (
    "external-entity",
    "parameter-entity",
    "system-dtd",
    "lowercase-keyword",
    "utf-16-external-entity",
)


@pytest.mark.parametrize("kind", XXE_KINDS)
def test_xxe_is_malformed_and_reads_nothing(
    check: Check, sealed: bytes, secret_file: Path, kind: str
) -> None:
    """A DTD with external entities is malformed, and nothing of the referenced file shows up."""
    raw = _xxe_documents(sealed, secret_file)[kind]
    error = refused(check, raw, Malformed, "malformed")
    secret = secret_file.read_text()
    assert secret not in str(error)
    assert secret not in repr(error.data)
    assert secret not in repr(error.args)


def _billion_laughs(encoding: str = "UTF-8") -> str:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f"<!DOCTYPE envelope [{entities}]>\n"
        '<envelope xmlns="urn:kazan:exchange:envelope:1" version="1">'
        "<messageId>&lol9;</messageId></envelope>"
    )


@pytest.mark.parametrize(
    "raw",
    [_billion_laughs().encode(), _billion_laughs("UTF-16").encode("utf-16-le")],
    ids=["utf-8", "utf-16-no-bom"],
)
def test_billion_laughs_is_malformed_quickly(check: Check, raw: bytes) -> None:
    """An entity-expansion bomb is malformed, well within a second."""
    started = time.monotonic()
    refused(check, raw, Malformed, "malformed")
    assert time.monotonic() - started < 1.0


def test_oversized_input_is_too_large(trust: TrustStore, clock: FrozenClock, sealed: bytes) -> None:
    """One byte over max_size is too-large; exactly max_size is accepted."""
    assert unseal(sealed, trust, clock=clock, max_size=len(sealed)).raw == sealed
    with pytest.raises(TooLarge) as info:
        unseal(sealed, trust, clock=clock, max_size=len(sealed) - 1)
    assert info.value.code == "too-large"


def test_huge_garbage_is_too_large_before_parsing(trust: TrustStore, clock: FrozenClock) -> None:
    """Megabytes of anything over the default limit are too-large, not malformed."""
    raw = b"<" + b"a" * (2 * MAX_SIZE)
    with pytest.raises(TooLarge) as info:
        unseal(raw, trust, clock=clock)
    assert info.value.code == "too-large"


def test_verify_xml_checks_size_itself(
    trust: TrustStore, clock: FrozenClock, sealed: bytes
) -> None:
    """verify_xml refuses oversized input on its own, without unseal's check in front."""
    with pytest.raises(TooLarge) as info:
        verify_xml(sealed, trust, clock.now(), max_size=100)
    assert info.value.code == "too-large"


def _latin1(sealed: bytes, signer: Credentials, clock: FrozenClock) -> bytes:
    raw = seal(make_envelope(clock, payload={"name": "Ivan Petrøv", "address": "Kazan"}), signer)
    return raw.decode().replace("'UTF-8'", "'ISO-8859-1'").encode("latin-1")


ENCODINGS: dict[str, Callable[[bytes, Credentials, FrozenClock], bytes]] = {
    "latin-1-bytes-declared-iso-8859-1": _latin1,
    "ascii-declared-iso-8859-1": lambda raw, _s, _c: raw.replace(b"'UTF-8'", b"'ISO-8859-1'"),
    "ascii-declared-utf-16": lambda raw, _s, _c: raw.replace(b"'UTF-8'", b"'UTF-16'"),
    "invalid-bytes-in-payload": lambda raw, _s, _c: raw.replace(b"Ivan", b"Iv\xff\xfean"),
    "overlong-utf-8": lambda raw, _s, _c: raw.replace(b"Ivan", b"Iv\xc0\xaen"),
    "lone-surrogate": lambda raw, _s, _c: raw.replace(b"Ivan", b"Iv\xed\xa0\x80n"),
    "utf-16-with-bom": lambda raw, _s, _c: (
        raw.decode().replace("'UTF-8'", "'UTF-16'").encode("utf-16")
    ),
    "utf-16-le-without-bom": lambda raw, _s, _c: (
        raw.decode().replace("'UTF-8'", "'UTF-16'").encode("utf-16-le")
    ),
    "utf-16-be-without-bom": lambda raw, _s, _c: (
        raw.decode().replace("'UTF-8'", "'UTF-16'").encode("utf-16-be")
    ),
    "nul-byte": lambda raw, _s, _c: raw.replace(b"Ivan", b"Iv\x00an"),
}


@pytest.mark.parametrize("recipe", ENCODINGS.values(), ids=ENCODINGS.keys())
def test_non_utf8_is_malformed(
    check: Check,
    sealed: bytes,
    signer: Credentials,
    clock: FrozenClock,
    recipe: Callable[[bytes, Credentials, FrozenClock], bytes],
) -> None:
    """Only UTF-8 is accepted: other encodings (declared or not) and invalid bytes are malformed."""
    raw = recipe(sealed, signer, clock)
    assert raw != sealed
    refused(check, raw, Malformed, "malformed")


@pytest.mark.parametrize("keep", [0, 1, 20, 200, -200, -30, -1], ids=lambda n: f"keep-{n}")
def test_truncated_input_is_malformed(check: Check, sealed: bytes, keep: int) -> None:
    """An envelope cut off anywhere (or empty) is malformed."""
    refused(check, sealed[:keep], Malformed, "malformed")


def test_blank_input_is_malformed(check: Check) -> None:
    """Whitespace only is neither XML nor JSON: malformed."""
    refused(check, b" \n\t ", Malformed, "malformed")


# --- algorithms and the shape of SignedInfo ---------------------------------------------

ALGORITHM_SWAPS = {
    "signature-hmac-sha256": (ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
    "signature-hmac-sha1": (ECDSA_SHA256, "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
    "signature-rsa-sha1": (ECDSA_SHA256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
    "signature-ecdsa-sha1": (ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"),
    "signature-dsa-sha1": (ECDSA_SHA256, "http://www.w3.org/2000/09/xmldsig#dsa-sha1"),
    "signature-ecdsa-sha512": (
        ECDSA_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    ),
    "signature-rsa-sha256-with-ec-key": (ECDSA_SHA256, RSA_SHA256),
    "signature-empty": (ECDSA_SHA256, ""),
    "digest-sha1": (SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"),
    "digest-sha512": (SHA256, "http://www.w3.org/2001/04/xmlenc#sha512"),
    "digest-md5": (SHA256, "http://www.w3.org/2001/04/xmldsig-more#md5"),
}


@pytest.mark.parametrize(("old", "new"), ALGORITHM_SWAPS.values(), ids=ALGORITHM_SWAPS.keys())
def test_off_profile_algorithm_is_unsupported(
    check: Check, sealed: bytes, signer: Credentials, old: str, new: str
) -> None:
    """A signature or digest algorithm outside the allow-list: unsupported-algorithm."""
    root = tree(resign_signed_info(tree(sealed), signer))
    for node in signature_of(root).iter(DS + "SignatureMethod", DS + "DigestMethod"):
        if node.get("Algorithm") == old:
            node.set("Algorithm", new)
    refused(check, resign_signed_info(root, signer), UnsupportedAlgorithm, "unsupported-algorithm")


C14N_SWAPS = {
    "inclusive-c14n": INCLUSIVE_C14N,
    "inclusive-c14n-with-comments": INCLUSIVE_C14N + "#WithComments",
    "c14n-1.1": "http://www.w3.org/2006/12/xml-c14n11",
    "exclusive-c14n-with-comments": EXC_C14N + "WithComments",
}


@pytest.mark.parametrize("uri", C14N_SWAPS.values(), ids=C14N_SWAPS.keys())
def test_off_profile_canonicalization_is_unsupported(
    check: Check, sealed: bytes, signer: Credentials, uri: str
) -> None:
    """SignedInfo canonicalised other than by exc-c14n without comments: unsupported-algorithm."""
    root = tree(sealed)
    signed_info_child(root, "ds:CanonicalizationMethod").set("Algorithm", uri)
    refused(check, resign_signed_info(root, signer), UnsupportedAlgorithm, "unsupported-algorithm")


def _replace_transform(index: int, uri: str) -> Callable[[etree._Element], None]:
    def apply(root: etree._Element) -> None:
        step = transforms_of(root)[index]
        step.set("Algorithm", uri)
        if uri == XPATH:
            xpath = etree.SubElement(step, DS + "XPath")
            xpath.text = "not(ancestor-or-self::ds:Signature)"

    return apply


def _append_transform(uri: str) -> Callable[[etree._Element], None]:
    def apply(root: etree._Element) -> None:
        etree.SubElement(transforms_of(root), DS + "Transform", Algorithm=uri)

    return apply


def _reverse_transforms(root: etree._Element) -> None:
    transforms = transforms_of(root)
    transforms.insert(0, transforms[1])


TRANSFORM_CHANGES: dict[str, Callable[[etree._Element], None]] = {
    "xpath-instead-of-enveloped": _replace_transform(0, XPATH),
    "inclusive-c14n-instead-of-exclusive": _replace_transform(1, INCLUSIVE_C14N),
    "exclusive-with-comments": _replace_transform(1, EXC_C14N + "WithComments"),
    "xslt": _replace_transform(1, "http://www.w3.org/TR/1999/REC-xslt-19991116"),
    "base64": _replace_transform(1, "http://www.w3.org/2000/09/xmldsig#base64"),
    "reversed-order": _reverse_transforms,
    "extra-xpath-appended": _append_transform(XPATH),
    "extra-xslt-appended": _append_transform("http://www.w3.org/TR/1999/REC-xslt-19991116"),
}


@pytest.mark.parametrize("change", TRANSFORM_CHANGES.values(), ids=TRANSFORM_CHANGES.keys())
def test_off_profile_transforms_are_unsupported(
    check: Check, sealed: bytes, signer: Credentials, change: Callable[[etree._Element], None]
) -> None:
    """Any transform chain other than enveloped-signature then exc-c14n: unsupported-algorithm."""
    root = tree(sealed)
    change(root)
    refused(check, resign_signed_info(root, signer), UnsupportedAlgorithm, "unsupported-algorithm")


def _set_reference(**attributes: str | None) -> Callable[[etree._Element], None]:
    def apply(root: etree._Element) -> None:
        reference = signed_info_child(root, "ds:Reference")
        for name, value in attributes.items():
            if value is None:
                del reference.attrib[name]
            else:
                reference.set(name, value)

    return apply


def _set_attribute(path: str, **attributes: str) -> Callable[[etree._Element], None]:
    def apply(root: etree._Element) -> None:
        node = signed_info_child(root, path)
        for name, value in attributes.items():
            node.set(name, value)

    return apply


def _second_reference(root: etree._Element) -> None:
    reference = signed_info_child(root, "ds:Reference")
    reference.addnext(copy.deepcopy(reference))


def _add_key_name(root: etree._Element) -> None:
    key_info = signature_of(root).find(DS + "KeyInfo")
    assert key_info is not None
    etree.SubElement(key_info, DS + "KeyName").text = "single-center"


def _add_object(root: etree._Element) -> None:
    etree.SubElement(signature_of(root), DS + "Object").text = "data"


def _drop_certificate(root: etree._Element) -> None:
    node = signature_of(root).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert node is not None
    detach(node)


REFERENCE_CHANGES: dict[str, Callable[[etree._Element], None]] = {
    "uri-fragment": _set_reference(URI="#x"),
    "uri-xpointer": _set_reference(URI="#xpointer(/)"),
    "uri-external": _set_reference(URI="http://example.org/envelope.xml"),
    "uri-file": _set_reference(URI="file:///etc/passwd"),
    "uri-missing": _set_reference(URI=None),
    "extra-id": _set_reference(Id="ref-1"),
    "extra-type": _set_reference(Type="http://www.w3.org/2000/09/xmldsig#Object"),
    "uri-on-signature-method": _set_attribute("ds:SignatureMethod", URI=""),
    "uri-on-canonicalization-method": _set_attribute("ds:CanonicalizationMethod", URI=""),
    "algorithm-on-transforms": _set_attribute("ds:Reference/ds:Transforms", Algorithm=SHA256),
    "algorithm-on-digest-value": _set_attribute("ds:Reference/ds:DigestValue", Algorithm=SHA256),
    "second-reference": _second_reference,
    "key-name-in-key-info": _add_key_name,
    "object-in-signature": _add_object,
    "no-certificate": _drop_certificate,
}


@pytest.mark.parametrize("change", REFERENCE_CHANGES.values(), ids=REFERENCE_CHANGES.keys())
def test_off_profile_reference_or_key_info_is_signature_invalid(
    check: Check, sealed: bytes, signer: Credentials, change: Callable[[etree._Element], None]
) -> None:
    """A reference other than one URI="" or extra elements in the signature: signature-invalid."""
    root = tree(sealed)
    change(root)
    refused(check, resign_signed_info(root, signer), SignatureInvalid, "signature-invalid")


def test_certificate_not_base64_is_malformed(check: Check, sealed: bytes) -> None:
    """An X509Certificate that is not base64 is malformed."""
    root = tree(sealed)
    node = signature_of(root).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert node is not None
    node.text = "not*base64!"
    refused(check, to_bytes(root), Malformed, "malformed")


def test_certificate_not_a_certificate_is_unknown(check: Check, sealed: bytes) -> None:
    """Valid base64 that is not a DER certificate: certificate-unknown."""
    root = tree(sealed)
    node = signature_of(root).find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert node is not None
    node.text = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    refused(check, to_bytes(root), CertificateUnknown, "certificate-unknown")


def test_signature_prefix_is_signed(
    check: Check, sealed: bytes, signer: Credentials, envelope: Envelope
) -> None:
    """Renaming the ds prefix changes SignedInfo (signature-invalid); re-signed, it verifies."""
    raw = sealed.replace(b"ds:", b"dsig:").replace(b"xmlns:ds=", b"xmlns:dsig=")
    assert f'xmlns:dsig="{DS_NS}"'.encode() in raw
    refused(check, raw, SignatureInvalid, "signature-invalid")
    assert check(resign_signed_info(tree(raw), signer)).envelope == envelope


# --- the signer's certificate -----------------------------------------------------------


def test_certificate_from_another_ca_is_unknown(
    check: Check, tmp_path: Path, clock: FrozenClock
) -> None:
    """A well-formed signature by a certificate of another CA (same names!): certificate-unknown."""
    other = ThrowawayPKI.create(tmp_path / "other", ("single-center",), clock)
    raw = seal(make_envelope(clock), other.credentials("single-center"))
    refused(check, raw, CertificateUnknown, "certificate-unknown")


def test_root_certificate_cannot_sign(check: Check, pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """The root CA's own key and certificate may not sign envelopes: certificate-usage."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from exchange.exceptions import CertificateUsage

    key = serialization.load_pem_private_key((pki.path / "root.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    root_cert = x509.load_pem_x509_certificate((pki.path / "root.pem").read_bytes())
    raw = sign_xml(make_envelope(clock), Credentials("single-center", key, root_cert))
    refused(check, raw, CertificateUsage, "certificate-usage")


@pytest.fixture
def fresh_signed(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> tuple[bytes, Credentials]:
    """An envelope sealed with single-center's certificate of the fresh PKI, and the credentials."""
    credentials = fresh_pki.credentials("single-center")
    return seal(make_envelope(clock), credentials), credentials


def test_expired_certificate(
    fresh_pki: ThrowawayPKI, fresh_signed: tuple[bytes, Credentials], clock: FrozenClock
) -> None:
    """One second past the certificate's not_after: certificate-expired."""
    raw, credentials = fresh_signed
    clock.set(credentials.certificate.not_valid_after_utc)
    fresh_pki.authority.write_crl()  # a current CRL, so only the validity period can fail
    trust = fresh_pki.trust()
    assert unseal(raw, trust, clock=clock).signer.party == "single-center"
    clock.advance(timedelta(seconds=1))
    with pytest.raises(CertificateExpired) as info:
        unseal(raw, trust, clock=clock, max_size=MAX_SIZE)
    assert info.value.code == "certificate-expired"


def test_not_yet_valid_certificate(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """A certificate judged a second before its not_before: certificate-not-yet-valid."""
    start = clock.now()
    clock.advance(timedelta(days=3))
    credentials = fresh_pki.issue("single-center")  # a rotation, three days after the root
    raw = seal(make_envelope(clock), credentials)
    trust = fresh_pki.trust()
    clock.set(credentials.certificate.not_valid_before_utc - timedelta(seconds=1))
    assert clock.now() > start
    with pytest.raises(CertificateNotYetValid) as info:
        unseal(raw, trust, clock=clock, max_size=MAX_SIZE)
    assert info.value.code == "certificate-not-yet-valid"


def test_revoked_certificate(
    fresh_pki: ThrowawayPKI, fresh_signed: tuple[bytes, Credentials], clock: FrozenClock
) -> None:
    """A certificate on the CRL: certificate-revoked."""
    raw, _ = fresh_signed
    assert unseal(raw, fresh_pki.trust(), clock=clock).signer.party == "single-center"
    fresh_pki.authority.revoke("single-center")
    with pytest.raises(CertificateRevoked) as info:
        unseal(raw, fresh_pki.trust(), clock=clock, max_size=MAX_SIZE)
    assert info.value.code == "certificate-revoked"


def test_missing_crl_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, fresh_signed: tuple[bytes, Credentials], clock: FrozenClock
) -> None:
    """Without a CRL nothing can be trusted: revocation-unknown."""
    raw, _ = fresh_signed
    (fresh_pki.path / "crl.pem").unlink()
    with pytest.raises(RevocationUnknown) as info:
        unseal(raw, fresh_pki.trust(), clock=clock, max_size=MAX_SIZE)
    assert info.value.code == "revocation-unknown"


def test_unreadable_crl_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, fresh_signed: tuple[bytes, Credentials], clock: FrozenClock
) -> None:
    """A CRL file that is not a CRL: revocation-unknown."""
    raw, _ = fresh_signed
    (fresh_pki.path / "crl.pem").write_bytes(
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    )
    with pytest.raises(RevocationUnknown) as info:
        unseal(raw, fresh_pki.trust(), clock=clock, max_size=MAX_SIZE)
    assert info.value.code == "revocation-unknown"


def test_stale_crl_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, fresh_signed: tuple[bytes, Credentials], clock: FrozenClock
) -> None:
    """Past the CRL's next_update (7 days) the certificate is valid, but: revocation-unknown."""
    raw, _ = fresh_signed
    trust = fresh_pki.trust()
    clock.advance(timedelta(days=7) - timedelta(minutes=1))
    assert unseal(raw, trust, clock=clock).signer.party == "single-center"
    clock.advance(timedelta(minutes=2))
    with pytest.raises(RevocationUnknown) as info:
        unseal(raw, trust, clock=clock, max_size=MAX_SIZE)
    assert info.value.code == "revocation-unknown"


def test_certificate_of_another_party_is_sender_mismatch(
    check: Check, pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A valid signature by improvement on single-center's envelope: sender-mismatch."""
    envelope = make_envelope(clock)
    assert envelope.sender == "single-center"
    with pytest.raises(SenderMismatch) as sealing:
        seal(envelope, pki.credentials("improvement"))
    assert sealing.value.code == "sender-mismatch"
    raw = sign_xml(envelope, pki.credentials("improvement"))
    refused(check, raw, SenderMismatch, "sender-mismatch")
