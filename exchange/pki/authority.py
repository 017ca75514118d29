"""The certificate authority that admins run: root CA, party certificates, revocation, CRL.

Layout of the certs directory (only ``root.pem`` and ``crl.pem`` are needed to verify):
``root.pem``, ``root.key`` (0600), ``crl.pem``, ``index.json``, and
``parties/<party>/<serial>.pem`` with ``<serial>.key`` (0600).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from exchange._clock import SYSTEM_CLOCK, Clock
from exchange._hazmat.signature import SigningKey
from exchange.envelope.model import PARTY_ID_PATTERN
from exchange.exceptions import PKIError, UnknownParty
from exchange.pki.credentials import Credentials
from exchange.pki.trust import CRL_FILE, PARTY_URI_PREFIX, ROOT_FILE

ROOT_KEY_FILE = "root.key"
INDEX_FILE = "index.json"
EXPIRY_WARNING = timedelta(days=30)
_BACKDATE = timedelta(minutes=5)
_ORGANISATION = "Kazan Executive Committee"


class KeyType(StrEnum):
    """Key algorithms a party certificate can have."""

    EC = "ec"
    RSA = "rsa"


class RevocationReason(StrEnum):
    """Why a certificate was revoked (the RFC 5280 reasons an admin picks from)."""

    KEY_COMPROMISE = "key-compromise"
    SUPERSEDED = "superseded"
    CESSATION = "cessation-of-operation"
    AFFILIATION_CHANGED = "affiliation-changed"
    UNSPECIFIED = "unspecified"


_X509_REASON = {
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
}


@dataclass
class IssuedCertificate:
    """One line of the CA's index."""

    serial: str
    party: str
    key_type: str
    not_before: str
    not_after: str
    revoked_at: str | None = None
    reason: str | None = None

    def status(self, now: datetime) -> str:
        """``revoked``, ``expired``, ``expiring`` (within 30 days) or ``valid``."""
        not_after = datetime.fromisoformat(self.not_after)
        if self.revoked_at:
            return "revoked"
        if now > not_after:
            return "expired"
        if now + EXPIRY_WARNING > not_after:
            return "expiring"
        return "valid"


def _normal_serial(text: str) -> str | None:
    """A serial as the index writes it (lowercase hex, no 0x, no leading zeros)."""
    try:
        return f"{int(text.removeprefix('0x').removeprefix('0X'), 16):x}"
    except ValueError:
        return None


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class CertificateAuthority:
    """The exchange's root CA, kept in a certs directory."""

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock

    # --- root and CRL -------------------------------------------------------------------

    def init_ca(self, name: str = "Kazan Inter-Agency Exchange Root CA", days: int = 3650) -> None:
        """Create the root key and self-signed root certificate, and an empty CRL.

        Raises:
            PKIError (pki-error): a root CA already exists here.
        """
        if (self.path / ROOT_FILE).exists() or (self.path / ROOT_KEY_FILE).exists():
            raise PKIError(f"a root CA already exists in {self.path}; refusing to replace it")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        now = self.clock.now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.path / ROOT_KEY_FILE, _key_pem(key))
        _write_public(self.path / ROOT_FILE, _cert_pem(cert))
        self._save_index([])
        self.write_crl()

    def write_crl(self, days: int = 7) -> x509.CertificateRevocationList:
        """Sign and publish a fresh CRL listing every revoked certificate."""
        root, key = self._root()
        now = self.clock.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(root.subject)
            .last_update(now - _BACKDATE)
            .next_update(now + timedelta(days=days))
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        for entry in self.index():
            if entry.revoked_at is None:
                continue
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(entry.serial, 16))
                .revocation_date(datetime.fromisoformat(entry.revoked_at))
                .add_extension(
                    x509.CRLReason(_X509_REASON[RevocationReason(entry.reason or "unspecified")]),
                    critical=False,
                )
                .build()
            )
            builder = builder.add_revoked_certificate(revoked)
        crl = builder.sign(key, hashes.SHA256())
        _write_public(self.path / CRL_FILE, crl.public_bytes(serialization.Encoding.PEM))
        return crl

    # --- party certificates -------------------------------------------------------------

    def issue(
        self, party: str, key_type: KeyType = KeyType.EC, days: int = 365
    ) -> IssuedCertificate:
        """Issue the first signing certificate of a party.

        Raises:
            PKIError (pki-error): bad party id, or the party already has a valid certificate
                (use ``rotate``).
        """
        if self.active(party):
            raise PKIError(f"{party} already has a valid certificate; use `rotate` for a new one")
        return self._issue(party, key_type, days)

    def rotate(
        self, party: str, key_type: KeyType | None = None, days: int = 365
    ) -> IssuedCertificate:
        """Issue a new certificate for a party; the old ones stay valid until they end.

        Raises:
            UnknownParty (unknown-party): the party has no certificate to rotate.
        """
        active = self.active(party)
        if not active:
            raise UnknownParty(f"{party} has no valid certificate to rotate; use `issue`")
        return self._issue(party, key_type or KeyType(active[-1].key_type), days)

    def _issue(self, party: str, key_type: KeyType, days: int) -> IssuedCertificate:
        if not re.match(PARTY_ID_PATTERN, party):
            raise PKIError(f"{party!r} is not a party id (lowercase letters, digits, dashes)")
        root, root_key = self._root()
        key: SigningKey = (
            ec.generate_private_key(ec.SECP256R1())
            if key_type is KeyType.EC
            else rsa.generate_private_key(public_exponent=65537, key_size=3072)
        )
        now = self.clock.now()
        not_after = min(now + timedelta(days=days), root.not_valid_after_utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "exchange"),
                        x509.NameAttribute(NameOID.COMMON_NAME, party),
                    ]
                )
            )
            .issuer_name(root.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(PARTY_URI_PREFIX + party)]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )
        serial = f"{cert.serial_number:x}"
        _write_private(self._party_dir(party) / f"{serial}.key", _key_pem(key))
        _write_public(self._party_dir(party) / f"{serial}.pem", _cert_pem(cert))
        entry = IssuedCertificate(
            serial=serial,
            party=party,
            key_type=key_type.value,
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
        )
        self._save_index([*self.index(), entry])
        return entry

    def revoke(
        self, party_or_serial: str, reason: RevocationReason = RevocationReason.UNSPECIFIED
    ) -> list[IssuedCertificate]:
        """Revoke a certificate by serial, or every valid certificate of a party; publish the CRL.

        Raises:
            UnknownParty (unknown-party): nothing valid matches.
        """
        entries = self.index()
        now = self.clock.now()
        serial = _normal_serial(party_or_serial)
        targets = [
            entry
            for entry in entries
            if entry.revoked_at is None
            and (entry.serial == serial or entry.party == party_or_serial)
        ]
        if not targets:
            raise UnknownParty(f"no unrevoked certificate matches {party_or_serial!r}")
        for entry in targets:
            entry.revoked_at = now.isoformat()
            entry.reason = reason.value
        self._save_index(entries)
        self.write_crl()
        return targets

    def credentials(self, party: str) -> Credentials:
        """The party's newest valid signing key and certificate.

        Raises:
            UnknownParty (unknown-party): the party has no valid certificate here.
        """
        active = self.active(party)
        if not active:
            raise UnknownParty(
                f"no valid certificate for {party!r} in {self.path}; "
                f"run `exchange certs issue {party}`"
            )
        serial = active[-1].serial
        return Credentials.load(
            party,
            self._party_dir(party) / f"{serial}.key",
            self._party_dir(party) / f"{serial}.pem",
        )

    def certificate(self, serial: str) -> x509.Certificate:
        """A certificate this CA issued, by serial (hex).

        Raises:
            UnknownParty (unknown-party): no such serial.
        """
        for entry in self.index():
            if entry.serial == _normal_serial(serial):
                pem = (self._party_dir(entry.party) / f"{entry.serial}.pem").read_bytes()
                return x509.load_pem_x509_certificate(pem)
        raise UnknownParty(f"no certificate with serial {serial}")

    def index(self) -> list[IssuedCertificate]:
        """Every certificate this CA issued, oldest first."""
        try:
            rows = json.loads((self.path / INDEX_FILE).read_text())
        except FileNotFoundError:
            return []
        return [IssuedCertificate(**row) for row in rows]

    def active(self, party: str) -> list[IssuedCertificate]:
        """The party's certificates that are valid now (expiring ones included), oldest first."""
        now = self.clock.now()
        return [
            entry
            for entry in self.index()
            if entry.party == party and entry.status(now) in ("valid", "expiring")
        ]

    # --- internals ----------------------------------------------------------------------

    def _party_dir(self, party: str) -> Path:
        return self.path / "parties" / party

    def _root(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate((self.path / ROOT_FILE).read_bytes())
            key = serialization.load_pem_private_key(
                (self.path / ROOT_KEY_FILE).read_bytes(), password=None
            )
        except FileNotFoundError:
            raise PKIError(
                f"no root CA (root.pem and root.key) in {self.path}; run `exchange certs init-ca`"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PKIError("the root key must be an EC key")
        return cert, key

    def _save_index(self, entries: list[IssuedCertificate]) -> None:
        _write_public(
            self.path / INDEX_FILE, json.dumps([asdict(e) for e in entries], indent=2).encode()
        )
