"""The trust store: chain, usage, validity and revocation of signer certificates; CRL reloads."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import exchange.pki.trust as trust_module
from exchange._clock import FrozenClock
from exchange.exceptions import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUnknown,
    CertificateUsage,
    ExchangeError,
    PKIError,
    PKIFileCorrupt,
    RevocationUnknown,
)
from exchange.pki.trust import PARTY_URI_PREFIX, CrlNumberFile, TrustStore
from exchange.signing import seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope


def refused(run: Callable[[], object], error: type[ExchangeError], code: str) -> ExchangeError:
    """Assert that ``run()`` raises exactly ``error`` with ``code``."""
    with pytest.raises(error) as info:
        run()
    assert type(info.value) is error, info.value
    assert info.value.code == code
    return info.value


def bump_mtime(path: Path, seconds: int = 10) -> None:
    """Move a file's mtime forward, so a change is visible whatever the clock granularity."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def custom_certificate(
    pki: ThrowawayPKI,
    *,
    uris: tuple[str, ...] = (PARTY_URI_PREFIX + "single-center",),
    digital_signature: bool = True,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate signed by the PKI's root, with chosen SAN URIs and usage."""
    root = x509.load_pem_x509_certificate((pki.path / "root.pem").read_bytes())
    root_key = serialization.load_pem_private_key((pki.path / "root.key").read_bytes(), None)
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = FrozenClock().now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custom")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=not digital_signature,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    return builder.sign(root_key, hashes.SHA256())


# --- what check() judges ----------------------------------------------------------------


def test_check_names_the_party(pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock) -> None:
    """A good party certificate yields its party, serial and end of validity."""
    cert = pki.credentials("architecture").certificate
    signer = trust.check(cert, clock.now())
    assert signer.party == "architecture"
    assert signer.serial == cert.serial_number
    assert signer.not_after == cert.not_valid_after_utc
    assert trust.check(cert, clock.now()) == signer  # cached facts give the same answer


def test_certificate_of_another_ca_is_unknown(
    trust: TrustStore, tmp_path: Path, clock: FrozenClock
) -> None:
    """A certificate of another root with identical names: certificate-unknown."""
    other = ThrowawayPKI.create(tmp_path / "other", ("single-center",), clock)
    cert = other.credentials("single-center").certificate
    refused(lambda: trust.check(cert, clock.now()), CertificateUnknown, "certificate-unknown")


def test_root_certificate_is_not_a_signer(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock
) -> None:
    """The root certificate itself (a CA without digitalSignature): certificate-usage."""
    refused(lambda: trust.check(trust.root, clock.now()), CertificateUsage, "certificate-usage")


CUSTOM: dict[str, dict[str, object]] = {
    "no-san": {"uris": ()},
    "two-parties": {"uris": (PARTY_URI_PREFIX + "single-center", PARTY_URI_PREFIX + "improvement")},
    "foreign-uri-only": {"uris": ("https://example.org/single-center",)},
    "no-digital-signature": {"digital_signature": False},
    "ca-true": {"ca": True},
}


@pytest.mark.parametrize("options", CUSTOM.values(), ids=CUSTOM.keys())
def test_unusable_certificate_is_certificate_usage(
    pki: ThrowawayPKI, trust: TrustStore, clock: FrozenClock, options: dict[str, object]
) -> None:
    """Issued by our root but not one party's signing certificate: certificate-usage."""
    cert = custom_certificate(pki, **options)  # type: ignore[arg-type]
    refused(lambda: trust.check(cert, clock.now()), CertificateUsage, "certificate-usage")


def test_validity_boundaries(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """Valid from not_before to not_after inclusive; outside: not-yet-valid / expired."""
    start = clock.now()
    clock.advance(timedelta(days=2))
    cert = fresh_pki.issue("improvement").certificate
    trust = fresh_pki.trust()
    clock.set(cert.not_valid_before_utc)
    assert trust.check(cert, clock.now()).party == "improvement"
    assert clock.now() > start
    refused(
        lambda: trust.check(cert, cert.not_valid_before_utc - timedelta(seconds=1)),
        CertificateNotYetValid,
        "certificate-not-yet-valid",
    )
    refused(
        lambda: trust.check(cert, cert.not_valid_after_utc + timedelta(seconds=1)),
        CertificateExpired,
        "certificate-expired",
    )


def test_missing_root_is_certificate_unknown(tmp_path: Path) -> None:
    """A directory without root.pem gives no trust store: certificate-unknown."""
    refused(lambda: TrustStore.from_dir(tmp_path), CertificateUnknown, "certificate-unknown")


# --- the CRL ----------------------------------------------------------------------------


def test_crl_of_another_ca_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, tmp_path: Path, clock: FrozenClock
) -> None:
    """A CRL signed by another CA (same issuer name): revocation-unknown, nothing is trusted."""
    other = ThrowawayPKI.create(tmp_path / "other", ("single-center",), clock)
    shutil.copyfile(other.path / "crl.pem", fresh_pki.path / "crl.pem")
    trust = fresh_pki.trust()
    cert = fresh_pki.credentials("single-center").certificate
    refused(lambda: trust.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")


def test_crl_without_next_update_window_is_stale(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """Judged before the CRL's last_update or after its next_update: revocation-unknown."""
    trust = fresh_pki.trust()
    cert = fresh_pki.credentials("single-center").certificate
    crl = x509.load_pem_x509_crl((fresh_pki.path / "crl.pem").read_bytes())
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=7, minutes=5)
    next_update = crl.next_update_utc
    assert trust.check(cert, next_update).party == "single-center"
    refused(
        lambda: trust.check(cert, next_update + timedelta(seconds=1)),
        RevocationUnknown,
        "revocation-unknown",
    )


def test_revocation_reaches_an_existing_store_on_refresh(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """An existing TrustStore picks up a new crl.pem on refresh(), without being rebuilt."""
    credentials = fresh_pki.credentials("single-center")
    raw = seal(make_envelope(clock), credentials)
    trust = fresh_pki.trust()
    assert unseal(raw, trust, clock=clock).signer.party == "single-center"
    fresh_pki.authority.revoke("single-center")
    bump_mtime(fresh_pki.path / "crl.pem")
    trust.refresh()
    refused(lambda: unseal(raw, trust, clock=clock), CertificateRevoked, "certificate-revoked")


def test_revocation_reaches_check_without_an_explicit_refresh(
    fresh_pki: ThrowawayPKI, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check() itself looks at crl.pem again once the recheck interval has passed."""
    monkeypatch.setattr(trust_module, "CRL_RECHECK_SECONDS", -1.0)
    cert = fresh_pki.credentials("improvement").certificate
    trust = fresh_pki.trust()
    assert trust.check(cert, clock.now()).party == "improvement"
    fresh_pki.authority.revoke("improvement")
    bump_mtime(fresh_pki.path / "crl.pem")
    refused(lambda: trust.check(cert, clock.now()), CertificateRevoked, "certificate-revoked")


def test_crl_replaced_within_one_mtime_tick_is_picked_up(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A new crl.pem with the very same mtime as the one already read (coarse clocks) still counts.

    File systems with coarse timestamps, or a publisher that preserves mtimes, can
    replace the CRL without changing st_mtime; the store must notice the new file anyway.
    """
    cert = fresh_pki.credentials("single-center").certificate
    crl_path = fresh_pki.path / "crl.pem"
    trust = fresh_pki.trust()
    assert trust.check(cert, clock.now()).party == "single-center"
    seen = crl_path.stat()
    fresh_pki.authority.revoke("single-center")
    os.utime(crl_path, ns=(seen.st_atime_ns, seen.st_mtime_ns))
    trust.refresh()
    refused(lambda: trust.check(cert, clock.now()), CertificateRevoked, "certificate-revoked")


def test_crl_removed_later_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """If crl.pem disappears, a refreshed store trusts nothing: revocation-unknown."""
    cert = fresh_pki.credentials("single-center").certificate
    trust = fresh_pki.trust()
    assert trust.check(cert, clock.now()).party == "single-center"
    (fresh_pki.path / "crl.pem").unlink()
    trust.refresh()
    refused(lambda: trust.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")


def test_crl_replaced_by_foreign_crl_later_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, tmp_path: Path, clock: FrozenClock
) -> None:
    """A foreign CRL swapped in under a running store: revocation-unknown after refresh."""
    other = ThrowawayPKI.create(tmp_path / "other", ("single-center",), clock)
    cert = fresh_pki.credentials("single-center").certificate
    trust = fresh_pki.trust()
    assert trust.check(cert, clock.now()).party == "single-center"
    shutil.copyfile(other.path / "crl.pem", fresh_pki.path / "crl.pem")
    bump_mtime(fresh_pki.path / "crl.pem")
    trust.refresh()
    refused(lambda: trust.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")


def test_revoking_one_serial_leaves_the_rotated_one(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """Revoking the old serial after a rotation refuses only the old certificate."""
    old = fresh_pki.credentials("single-center").certificate
    new = fresh_pki.issue("single-center").certificate
    fresh_pki.authority.revoke(f"{old.serial_number:x}")
    trust = fresh_pki.trust()
    refused(lambda: trust.check(old, clock.now()), CertificateRevoked, "certificate-revoked")
    assert trust.check(new, clock.now()).serial == new.serial_number


# --- CRL numbers: an old CRL cannot be put back -----------------------------------------


def put_back(path: Path, data: bytes) -> None:
    """Replace crl.pem with older bytes the way a copy would (a new file, a new inode)."""
    temp = path.with_name("crl.pem.old")
    temp.write_bytes(data)
    os.replace(temp, path)


def test_older_crl_put_back_under_a_running_store_is_refused(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A reloaded CRL numbered below one already seen: revocation-unknown, not un-revocation."""
    crl_path = fresh_pki.path / "crl.pem"
    old = crl_path.read_bytes()
    cert = fresh_pki.credentials("single-center").certificate
    fresh_pki.authority.revoke("single-center")
    trust = fresh_pki.trust()
    refused(lambda: trust.check(cert, clock.now()), CertificateRevoked, "certificate-revoked")
    put_back(crl_path, old)
    trust.refresh()
    error = refused(lambda: trust.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")
    assert "older CRL" in error.message
    assert "already seen" in error.message


def test_older_crl_is_refused_after_a_restart_with_a_number_file(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """With a CrlNumberFile, a new TrustStore (a restart) still refuses the older CRL."""
    crl_path = fresh_pki.path / "crl.pem"
    old = crl_path.read_bytes()
    cert = fresh_pki.credentials("improvement").certificate
    fresh_pki.authority.revoke("improvement")
    numbers = CrlNumberFile.beside(fresh_pki.path)
    first = TrustStore.from_dir(fresh_pki.path, numbers)
    refused(lambda: first.check(cert, clock.now()), CertificateRevoked, "certificate-revoked")
    put_back(crl_path, old)
    restarted = TrustStore.from_dir(fresh_pki.path, CrlNumberFile.beside(fresh_pki.path))
    refused(lambda: restarted.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")
    # Once the current CRL is published again, the store trusts it (and only it) again.
    fresh_pki.authority.write_crl()
    restarted.refresh()
    refused(lambda: restarted.check(cert, clock.now()), CertificateRevoked, "certificate-revoked")


def test_same_crl_again_is_accepted(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """The CRL already seen, loaded again after a restart, is not mistaken for an older one."""
    cert = fresh_pki.credentials("single-center").certificate
    TrustStore.from_dir(fresh_pki.path, CrlNumberFile.beside(fresh_pki.path))
    again = TrustStore.from_dir(fresh_pki.path, CrlNumberFile.beside(fresh_pki.path))
    assert again.check(cert, clock.now()).party == "single-center"


def test_crl_of_another_ca_does_not_move_the_number(
    fresh_pki: ThrowawayPKI, tmp_path: Path, clock: FrozenClock
) -> None:
    """Only a CRL signed by our root is remembered: a foreign one cannot lock us out later."""
    other = ThrowawayPKI.create(tmp_path / "other", ("single-center",), clock)
    other.authority.write_crl()
    other.authority.write_crl()
    mine = (fresh_pki.path / "crl.pem").read_bytes()
    put_back(fresh_pki.path / "crl.pem", (other.path / "crl.pem").read_bytes())
    numbers = CrlNumberFile.beside(fresh_pki.path)
    TrustStore.from_dir(fresh_pki.path, numbers)
    assert not numbers.path.exists()
    put_back(fresh_pki.path / "crl.pem", mine)
    trust = TrustStore.from_dir(fresh_pki.path, numbers)
    cert = fresh_pki.credentials("single-center").certificate
    assert trust.check(cert, clock.now()).party == "single-center"


def test_crl_without_a_number_is_revocation_unknown(
    fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> None:
    """A CRL signed by the root but carrying no CRL number cannot be ordered: refused."""
    root = x509.load_pem_x509_certificate((fresh_pki.path / "root.pem").read_bytes())
    root_key = serialization.load_pem_private_key((fresh_pki.path / "root.key").read_bytes(), None)
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(clock.now() - timedelta(minutes=1))
        .next_update(clock.now() + timedelta(days=1))
        .sign(root_key, hashes.SHA256())
    )
    trust = TrustStore(root, crl)
    cert = fresh_pki.credentials("single-center").certificate
    error = refused(lambda: trust.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")
    assert "no CRL number" in error.message


def test_corrupt_number_file_is_named(fresh_pki: ThrowawayPKI) -> None:
    """An unreadable CRL number file: pki-file-corrupt naming it."""
    numbers = CrlNumberFile.beside(fresh_pki.path)
    numbers.path.write_text("[1, 2")
    with pytest.raises(PKIFileCorrupt, match=r"crl-numbers\.json"):
        TrustStore.from_dir(fresh_pki.path, numbers)


def test_unwritable_number_file_is_a_named_error(
    fresh_pki: ThrowawayPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CRL number that cannot be recorded: pki-error naming the file, not an OSError."""

    def unwritable(path: Path, data: bytes, mode: int) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(trust_module, "write_file", unwritable)
    with pytest.raises(PKIError, match=r"crl-numbers\.json.*writable") as info:
        TrustStore.from_dir(fresh_pki.path, CrlNumberFile.beside(fresh_pki.path))
    assert info.value.code == "pki-error"


# --- corrupt files ----------------------------------------------------------------------


def test_corrupt_root_is_named(fresh_pki: ThrowawayPKI) -> None:
    """An unreadable root.pem: pki-file-corrupt naming the file, not a parser traceback."""
    (fresh_pki.path / "root.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n")
    with pytest.raises(PKIFileCorrupt) as info:
        fresh_pki.trust()
    assert info.value.code == "pki-file-corrupt"
    assert str(fresh_pki.path / "root.pem") in info.value.message


def test_corrupt_crl_names_the_file(fresh_pki: ThrowawayPKI, clock: FrozenClock) -> None:
    """An unreadable crl.pem: revocation-unknown naming the file and what to do."""
    (fresh_pki.path / "crl.pem").write_bytes(b"not a crl")
    trust = fresh_pki.trust()
    cert = fresh_pki.credentials("single-center").certificate
    error = refused(lambda: trust.check(cert, clock.now()), RevocationUnknown, "revocation-unknown")
    assert str(fresh_pki.path / "crl.pem") in error.message
    assert "exchange certs crl" in error.message
