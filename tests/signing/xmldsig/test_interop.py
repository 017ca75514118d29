"""xmlsec1 and our XML-DSig profile agree: it verifies what we sign, we verify what it signs."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange._hazmat.xml import serialize
from exchange.codec.xml import encode_xml
from exchange.envelope.model import Attachment, Envelope
from exchange.exceptions import ExchangeError, SenderMismatch, SignatureInvalid
from exchange.pki.authority import KeyType
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat, seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope

# No skip when xmlsec1 is missing: `make test` installs it, and a missing peer must fail.
pytestmark = pytest.mark.interop

ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

TEMPLATE = """<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <ds:SignedInfo>
    <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
    <ds:SignatureMethod Algorithm="{method}"/>
    <ds:Reference URI="">
      <ds:Transforms>
        <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      </ds:Transforms>
      <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
      <ds:DigestValue/>
    </ds:Reference>
  </ds:SignedInfo>
  <ds:SignatureValue/>
  <ds:KeyInfo>
    <ds:X509Data>
      <ds:X509Certificate/>
    </ds:X509Data>
  </ds:KeyInfo>
</ds:Signature>"""


def xmlsec1(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run xmlsec1 with a timeout, capturing its output."""
    return subprocess.run(
        ["xmlsec1", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def at(when: datetime) -> str:
    """A time as xmlsec1's --verification-time wants it (the container's local time is UTC)."""
    return when.strftime("%Y-%m-%d %H:%M:%S")


def xmlsec_verify(
    pki: ThrowawayPKI, document: Path, when: datetime
) -> subprocess.CompletedProcess[str]:
    """``xmlsec1 --verify`` against the PKI's root only, with certificates judged at ``when``."""
    return xmlsec1(
        "--verify",
        "--trusted-pem",
        pki.path / "root.pem",
        "--verification-time",
        at(when),
        document,
    )


def key_files(pki: ThrowawayPKI, party: str) -> tuple[Path, Path]:
    """The newest key and certificate PEM files of a party in the PKI directory."""
    serial = [entry.serial for entry in pki.authority.index() if entry.party == party][-1]
    folder = pki.path / "parties" / party
    return folder / f"{serial}.key", folder / f"{serial}.pem"


def xmlsec_sign(
    pki: ThrowawayPKI, party: str, envelope: Envelope, folder: Path, method: str = ECDSA_SHA256
) -> bytes:
    """Sign ``envelope`` with xmlsec1 and a party's key, from a signature template."""
    unsigned = serialize(encode_xml(envelope))
    template = unsigned.replace(
        b"</envelope>", TEMPLATE.format(method=method).encode() + b"</envelope>"
    )
    assert template != unsigned
    source, target = folder / "template.xml", folder / "signed-by-xmlsec1.xml"
    source.write_bytes(template)
    key, cert = key_files(pki, party)
    done = xmlsec1("--sign", "--privkey-pem", f"{key},{cert}", "--output", target, source)
    assert done.returncode == 0, done.stderr
    return target.read_bytes()


# --- xmlsec1 verifies what we sign ------------------------------------------------------


def test_xmlsec1_verifies_our_ec_signature(
    pki: ThrowawayPKI, clock: FrozenClock, tmp_path: Path
) -> None:
    """`xmlsec1 --verify --trusted-pem root.pem` accepts our ECDSA P-256 envelope signature."""
    raw = seal(make_envelope(clock), pki.credentials("single-center"))
    assert ECDSA_SHA256.encode() in raw
    (tmp_path / "signed.xml").write_bytes(raw)
    done = xmlsec_verify(pki, tmp_path / "signed.xml", clock.now())
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout + done.stderr


def test_xmlsec1_verifies_our_rsa_signature(
    fresh_pki: ThrowawayPKI, clock: FrozenClock, tmp_path: Path
) -> None:
    """`xmlsec1 --verify` accepts our RSA-SHA256 envelope signature."""
    raw = seal(make_envelope(clock), fresh_pki.issue("single-center", KeyType.RSA))
    assert RSA_SHA256.encode() in raw
    (tmp_path / "signed.xml").write_bytes(raw)
    done = xmlsec_verify(fresh_pki, tmp_path / "signed.xml", clock.now())
    assert done.returncode == 0, done.stderr


def test_xmlsec1_verifies_our_attachments_and_awkward_text(
    pki: ThrowawayPKI, clock: FrozenClock, tmp_path: Path
) -> None:
    """`xmlsec1 --verify` accepts a signed envelope with attachments and awkward characters."""
    envelope = make_envelope(
        clock,
        payload={"note": "a < b & c > d \"quoted\" 'single' \u041a\u0430\u0437\u0430\u043d\r\n"},
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
    raw = seal(envelope, pki.credentials("single-center"))
    (tmp_path / "signed.xml").write_bytes(raw)
    done = xmlsec_verify(pki, tmp_path / "signed.xml", clock.now())
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<recipient>improvement</recipient>", b"<recipient>land-property</recipient>"),
        (b"<s:name>Ivan Petrov</s:name>", b"<s:name>Ivan Petrow</s:name>"),
    ],
    ids=["recipient", "payload"],
)
def test_xmlsec1_rejects_our_tampered_signature(
    pki: ThrowawayPKI, clock: FrozenClock, tmp_path: Path, old: bytes, new: bytes
) -> None:
    """`xmlsec1 --verify` exits non-zero on a tampered envelope, as our verifier refuses it."""
    raw = seal(make_envelope(clock), pki.credentials("single-center"))
    tampered = raw.replace(old, new)
    assert tampered != raw
    (tmp_path / "tampered.xml").write_bytes(tampered)
    done = xmlsec_verify(pki, tmp_path / "tampered.xml", clock.now())
    assert done.returncode != 0
    with pytest.raises(SignatureInvalid) as info:
        unseal(tampered, pki.trust(), clock=clock)
    assert info.value.code == "signature-invalid"


def test_xmlsec1_and_we_agree_on_an_expired_certificate(
    pki: ThrowawayPKI, clock: FrozenClock, tmp_path: Path
) -> None:
    """Judged after the certificate's end, xmlsec1 refuses it and so do we (certificate-expired)."""
    credentials = pki.credentials("single-center")
    raw = seal(make_envelope(clock), credentials)
    (tmp_path / "signed.xml").write_bytes(raw)
    later = credentials.certificate.not_valid_after_utc + timedelta(days=1)
    assert xmlsec_verify(pki, tmp_path / "signed.xml", later).returncode != 0
    with pytest.raises(ExchangeError) as info:
        unseal(raw, pki.trust(), clock=FrozenClock(later))
    assert info.value.code == "certificate-expired"


# --- we verify what xmlsec1 signs -------------------------------------------------------


def test_we_verify_an_xmlsec1_ec_signature(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """An envelope signed by `xmlsec1 --sign` (pretty-printed, base64 wrapped) verifies exactly."""
    envelope = make_envelope(clock)
    raw = xmlsec_sign(pki, "single-center", envelope, tmp_path)
    assert b"\n" in raw.split(b"<ds:SignatureValue>")[1].split(b"</ds:SignatureValue>")[0]
    verified = unseal(raw, trust, clock=clock)
    assert verified.envelope == envelope
    assert verified.raw == raw
    assert verified.format is WireFormat.XML
    assert verified.signer.party == "single-center"


def test_we_verify_an_xmlsec1_rsa_signature(
    fresh_pki: ThrowawayPKI, clock: FrozenClock, tmp_path: Path
) -> None:
    """An envelope signed by `xmlsec1 --sign` with an RSA key and rsa-sha256 verifies."""
    fresh_pki.issue("single-center", KeyType.RSA)
    envelope = make_envelope(clock)
    raw = xmlsec_sign(fresh_pki, "single-center", envelope, tmp_path, RSA_SHA256)
    verified = unseal(raw, fresh_pki.trust(), clock=clock)
    assert verified.envelope == envelope


def test_xmlsec1_signature_with_wrong_key_is_sender_mismatch(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """xmlsec1 signing single-center's envelope with improvement's key: sender-mismatch."""
    envelope = make_envelope(clock)
    assert envelope.sender == "single-center"
    raw = xmlsec_sign(pki, "improvement", envelope, tmp_path)
    with pytest.raises(SenderMismatch) as info:
        unseal(raw, trust, clock=clock)
    assert info.value.code == "sender-mismatch"


def test_tampered_xmlsec1_signature_is_refused(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock, tmp_path: Path
) -> None:
    """An xmlsec1-signed envelope changed afterwards: signature-invalid, and xmlsec1 agrees."""
    raw = xmlsec_sign(pki, "single-center", make_envelope(clock), tmp_path)
    tampered = raw.replace(b"<s:count>3</s:count>", b"<s:count>4</s:count>")
    assert tampered != raw
    (tmp_path / "tampered.xml").write_bytes(tampered)
    assert xmlsec_verify(pki, tmp_path / "tampered.xml", clock.now()).returncode != 0
    with pytest.raises(SignatureInvalid) as info:
        unseal(tampered, trust, clock=clock)
    assert info.value.code == "signature-invalid"
