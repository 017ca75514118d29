"""The certificate authority: what it issues, how it stores keys, and openssl's view of it."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from exchange._clock import FrozenClock, SystemClock
from exchange.exceptions import (
    CAKeyOffline,
    CertificateRevoked,
    PKIError,
    PKIFileCorrupt,
    UnknownParty,
)
from exchange.pki.authority import CertificateAuthority, KeyType, RevocationReason
from exchange.pki.trust import PARTY_URI_PREFIX, crl_number, party_of
from exchange.signing import seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope


def root_of(pki: ThrowawayPKI) -> x509.Certificate:
    """The PKI's root certificate."""
    return x509.load_pem_x509_certificate((pki.path / "root.pem").read_bytes())


def crl_of(pki: ThrowawayPKI) -> x509.CertificateRevocationList:
    """The PKI's published CRL."""
    return x509.load_pem_x509_crl((pki.path / "crl.pem").read_bytes())


def cert_file(pki: ThrowawayPKI, party: str, index: int = -1) -> Path:
    """A party certificate's PEM file (the newest by default)."""
    serial = [entry.serial for entry in pki.authority.index() if entry.party == party][index]
    return pki.path / "parties" / party / f"{serial}.pem"


# --- the root ---------------------------------------------------------------------------


def test_root_is_a_ca_for_certificates_and_crls(pki: ThrowawayPKI) -> None:
    """The root has CA=true (critical, path length 0) and only keyCertSign and cRLSign."""
    root = root_of(pki)
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)


def test_init_ca_twice_is_refused(pki: ThrowawayPKI) -> None:
    """A second init_ca in the same directory must not replace the root: pki-error."""
    before = (pki.path / "root.pem").read_bytes()
    with pytest.raises(PKIError) as info:
        CertificateAuthority(pki.path, FrozenClock()).init_ca()
    assert info.value.code == "pki-error"
    assert (pki.path / "root.pem").read_bytes() == before


def test_no_root_is_a_pki_error(tmp_path: Path) -> None:
    """Issuing without a root CA: pki-error."""
    with pytest.raises(PKIError) as info:
        CertificateAuthority(tmp_path, FrozenClock()).issue("single-center")
    assert info.value.code == "pki-error"


# --- party certificates -----------------------------------------------------------------


@pytest.mark.parametrize("party", ["single-center", "improvement", "urban-permits"])
def test_party_certificate_profile(pki: ThrowawayPKI, party: str) -> None:
    """A party certificate: CA=false, digitalSignature, no CA usages, party URI SAN and CN."""
    cert = x509.load_pem_x509_certificate(cert_file(pki, party).read_bytes())
    cert.verify_directly_issued_by(root_of(pki))
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert not usage.crl_sign
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"urn:kazan:exchange:party:{party}"
    ]
    assert PARTY_URI_PREFIX + party == f"urn:kazan:exchange:party:{party}"
    assert party_of(cert) == party
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == party


def test_private_keys_are_owner_only(fresh_pki: ThrowawayPKI) -> None:
    """The root key and every party key (also after rotation) are files of mode 0600."""
    fresh_pki.issue("single-center", KeyType.RSA)
    keys = [fresh_pki.path / "root.key", *fresh_pki.path.glob("parties/*/*.key")]
    assert len(keys) == 1 + 5 + 1 + 1  # root, parties, the rotation, the collector
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_issue_twice_is_refused(fresh_pki: ThrowawayPKI) -> None:
    """issue() for a party that has a valid certificate: pki-error (rotate instead)."""
    with pytest.raises(PKIError) as info:
        fresh_pki.authority.issue("single-center")
    assert info.value.code == "pki-error"


@pytest.mark.parametrize("party", ["Single-Center", "x", "a_b", "../etc", "-lead", "a" * 64])
def test_bad_party_id_is_refused(fresh_pki: ThrowawayPKI, party: str) -> None:
    """A party id outside [a-z][a-z0-9-]{1,62}: pki-error."""
    with pytest.raises(PKIError) as info:
        fresh_pki.authority.issue(party)
    assert info.value.code == "pki-error"


def test_rotate_unknown_party_is_refused(fresh_pki: ThrowawayPKI) -> None:
    """rotate() for a party without a valid certificate: unknown-party."""
    with pytest.raises(UnknownParty) as info:
        fresh_pki.authority.rotate("nobody-here")
    assert info.value.code == "unknown-party"


def test_revoke_unknown_is_refused(fresh_pki: ThrowawayPKI) -> None:
    """revoke() of an unknown serial or party: unknown-party."""
    with pytest.raises(UnknownParty) as info:
        fresh_pki.authority.revoke("deadbeef")
    assert info.value.code == "unknown-party"


def test_rotation_keeps_the_old_certificate_valid(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """After rotate, envelopes signed with the old and with the new certificate both verify."""
    old = fresh_pki.credentials("single-center")
    old_raw = seal(make_envelope(clock), old)
    new = fresh_pki.issue("single-center")
    assert new.certificate.serial_number != old.certificate.serial_number
    assert fresh_pki.credentials("single-center").certificate == new.certificate
    new_raw = seal(make_envelope(clock), new)
    trust = fresh_pki.trust()
    assert unseal(old_raw, trust, clock=clock).signer.serial == old.certificate.serial_number
    assert unseal(new_raw, trust, clock=clock).signer.serial == new.certificate.serial_number
    statuses = [
        e.status(clock.now()) for e in fresh_pki.authority.index() if e.party == "single-center"
    ]
    assert statuses == ["valid", "valid"]


def test_revocation_is_listed_in_the_crl(fresh_pki: ThrowawayPKI) -> None:
    """revoke() publishes a CRL, signed by the root, that lists the serial and the reason."""
    revoked = fresh_pki.authority.revoke("improvement", RevocationReason.KEY_COMPROMISE)
    assert [entry.party for entry in revoked] == ["improvement"]
    crl = crl_of(fresh_pki)
    assert crl.is_signature_valid(root_of(fresh_pki).public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(int(revoked[0].serial, 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    assert len(list(crl)) == 1
    with pytest.raises(CertificateRevoked) as info:  # the cause, not "unknown party"
        fresh_pki.credentials("improvement")
    assert info.value.code == "certificate-revoked"


# --- openssl agrees ---------------------------------------------------------------------


@pytest.fixture
def live_pki(tmp_path: Path) -> ThrowawayPKI:
    """A PKI on the real clock, so openssl's checks against the current time pass."""
    return ThrowawayPKI.create(tmp_path / "live", ("single-center", "improvement"), SystemClock())


def openssl_verify(pki: ThrowawayPKI, cert: Path) -> subprocess.CompletedProcess[str]:
    """`openssl verify -crl_check` of a certificate against the PKI's root and CRL."""
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-crl_check",
            "-CAfile",
            str(pki.path / "root.pem"),
            "-CRLfile",
            str(pki.path / "crl.pem"),
            str(cert),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.interop
@pytest.mark.parametrize("key_type", [KeyType.EC, KeyType.RSA])
def test_openssl_accepts_a_party_certificate(live_pki: ThrowawayPKI, key_type: KeyType) -> None:
    """`openssl verify -crl_check -CAfile root.pem -CRLfile crl.pem` accepts a party cert."""
    if key_type is KeyType.RSA:
        live_pki.issue("single-center", KeyType.RSA)
    done = openssl_verify(live_pki, cert_file(live_pki, "single-center"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": OK")


@pytest.mark.interop
def test_openssl_refuses_a_revoked_certificate(live_pki: ThrowawayPKI) -> None:
    """After revoke, openssl verify -crl_check refuses the certificate as revoked."""
    cert = cert_file(live_pki, "improvement")
    assert openssl_verify(live_pki, cert).returncode == 0
    live_pki.authority.revoke("improvement")
    done = openssl_verify(live_pki, cert)
    assert done.returncode != 0
    assert "revoked" in (done.stdout + done.stderr).lower()
    assert openssl_verify(live_pki, cert_file(live_pki, "single-center")).returncode == 0


@pytest.mark.interop
def test_openssl_refuses_a_certificate_of_another_ca(
    live_pki: ThrowawayPKI, tmp_path: Path
) -> None:
    """A certificate of another root (with the same names) does not chain to ours for openssl."""
    other = ThrowawayPKI.create(tmp_path / "other", ("single-center",), SystemClock())
    done = openssl_verify(live_pki, cert_file(other, "single-center"))
    assert done.returncode != 0


# --- the CA key kept offline --------------------------------------------------------------


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` by relative name, with its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def offline(pki: ThrowawayPKI, tmp_path: Path) -> Path:
    """Move the root key out of the certs directory, as an admin keeping it offline does."""
    away = tmp_path / "usb" / "root.key"
    away.parent.mkdir()
    (pki.path / "root.key").rename(away)
    return away


def test_revoke_with_the_ca_key_offline_changes_nothing(
    fresh_pki: ThrowawayPKI, tmp_path: Path
) -> None:
    """Revoking without the root key: ca-key-offline saying what to do; no file changed."""
    away = offline(fresh_pki, tmp_path)
    before = snapshot(fresh_pki.path)
    with pytest.raises(CAKeyOffline) as info:
        fresh_pki.authority.revoke("single-center")
    assert info.value.code == "ca-key-offline"
    assert "EXCHANGE_CA_KEY" in info.value.message
    assert str(fresh_pki.path / "root.key") in info.value.message
    assert snapshot(fresh_pki.path) == before
    assert fresh_pki.authority.active("single-center")
    # The same revocation, with the key mounted where the admin says, goes through.
    mounted = CertificateAuthority(fresh_pki.path, fresh_pki.authority.clock, key_path=away)
    [revoked] = mounted.revoke("single-center")
    assert revoked.party == "single-center"
    assert [int(revoked.serial, 16)] == [entry.serial_number for entry in crl_of(fresh_pki)]


@pytest.mark.parametrize(
    "operation",
    [
        lambda ca: ca.issue("urban-permits-2"),
        lambda ca: ca.rotate("improvement"),
        lambda ca: ca.write_crl(),
    ],
    ids=["issue", "rotate", "crl"],
)
def test_signing_operations_with_the_ca_key_offline_change_nothing(
    fresh_pki: ThrowawayPKI, tmp_path: Path, operation: Callable[[CertificateAuthority], object]
) -> None:
    """Issue, rotate and crl without the root key: ca-key-offline, the directory unchanged."""
    offline(fresh_pki, tmp_path)
    before = snapshot(fresh_pki.path)
    with pytest.raises(CAKeyOffline):
        operation(fresh_pki.authority)
    assert snapshot(fresh_pki.path) == before


def test_init_ca_writes_the_key_where_it_is_kept(tmp_path: Path, clock: FrozenClock) -> None:
    """A CA whose key lives outside the certs directory writes and later signs with it there."""
    key_path = tmp_path / "vault" / "ca.key"
    ca = CertificateAuthority(tmp_path / "certs", clock, key_path=key_path)
    ca.init_ca()
    assert not (tmp_path / "certs" / "root.key").exists()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    ca.issue("single-center")
    assert [entry.party for entry in ca.index()] == ["single-center"]


def test_a_key_of_another_ca_is_refused(fresh_pki: ThrowawayPKI, tmp_path: Path) -> None:
    """A mounted key that does not match root.pem: pki-error, nothing signed."""
    other = ThrowawayPKI.create(tmp_path / "other", (), FrozenClock())
    ca = CertificateAuthority(fresh_pki.path, FrozenClock(), key_path=other.path / "root.key")
    before = snapshot(fresh_pki.path)
    with pytest.raises(PKIError, match="is not the key of"):
        ca.revoke("single-center")
    assert snapshot(fresh_pki.path) == before


# --- CRL numbers ------------------------------------------------------------------------


def test_crl_numbers_increase_while_the_clock_stands_still(fresh_pki: ThrowawayPKI) -> None:
    """Each CRL gets a higher number than the last, even at the same (frozen) instant."""
    numbers = [crl_number(crl_of(fresh_pki))]
    fresh_pki.authority.revoke("single-center")
    numbers.append(crl_number(crl_of(fresh_pki)))
    fresh_pki.authority.write_crl()
    numbers.append(crl_number(crl_of(fresh_pki)))
    assert all(isinstance(n, int) for n in numbers)
    assert numbers == sorted(set(numbers)), numbers  # type: ignore[type-var]


# --- corrupt files ----------------------------------------------------------------------


def corrupt(path: Path) -> None:
    """Overwrite a file with bytes that parse as nothing the CA wrote."""
    path.write_bytes(b"\x00garbage{")


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("index.json", lambda ca: ca.index()),
        ("index.json", lambda ca: ca.revoke("single-center")),
        ("root.pem", lambda ca: ca.revoke("single-center")),
        ("root.pem", lambda ca: ca.write_crl()),
        ("root.key", lambda ca: ca.rotate("single-center")),
        ("crl.pem", lambda ca: ca.revoke("single-center")),
        ("crl.pem", lambda ca: ca.write_crl()),
    ],
    ids=[
        "index-list",
        "index-revoke",
        "root-revoke",
        "root-crl",
        "key-rotate",
        "crl-revoke",
        "crl-crl",
    ],
)
def test_corrupt_ca_file_is_named(
    fresh_pki: ThrowawayPKI, name: str, operation: Callable[[CertificateAuthority], object]
) -> None:
    """A corrupt CA file: pki-file-corrupt naming the file and what to do; nothing changes."""
    corrupt(fresh_pki.path / name)
    before = snapshot(fresh_pki.path)
    with pytest.raises(PKIFileCorrupt) as info:
        operation(fresh_pki.authority)
    assert info.value.code == "pki-file-corrupt"
    assert str(fresh_pki.path / name) in info.value.message
    assert "restore" in info.value.message
    assert snapshot(fresh_pki.path) == before


@pytest.mark.parametrize(
    "rows",
    [
        {"serial": "1"},
        [{"serial": "1"}],
        [["not", "an", "object"]],
        [{"serial": "0x1", "party": "a", "key_type": "ec", "not_before": "x", "not_after": "y"}],
    ],
    ids=["not-a-list", "missing-fields", "not-objects", "bad-values"],
)
def test_index_with_wrong_shape_is_corrupt(fresh_pki: ThrowawayPKI, rows: object) -> None:
    """Valid JSON that is not the CA's index: pki-file-corrupt, not a traceback later."""
    (fresh_pki.path / "index.json").write_text(json.dumps(rows))
    with pytest.raises(PKIFileCorrupt, match=r"index\.json"):
        fresh_pki.authority.index()


@pytest.mark.parametrize("suffix", [".pem", ".key"])
def test_corrupt_party_file_is_named(fresh_pki: ThrowawayPKI, suffix: str) -> None:
    """A corrupt party certificate or key: pki-file-corrupt naming it, pointing to rotate."""
    path = cert_file(fresh_pki, "improvement").with_suffix(suffix)
    corrupt(path)
    with pytest.raises(PKIFileCorrupt) as info:
        fresh_pki.authority.credentials("improvement")
    assert str(path) in info.value.message
    assert "exchange certs rotate improvement" in info.value.message
    if suffix == ".pem":
        serial = path.stem
        with pytest.raises(PKIFileCorrupt, match=str(path)):
            fresh_pki.authority.certificate(serial)
