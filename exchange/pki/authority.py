"""The certificate authority that admins run: root CA, party certificates, revocation, CRL.

Layout of the certs directory (only ``root.pem`` and ``crl.pem`` are needed to verify):
``root.pem``, ``root.key`` (0600; or kept offline, elsewhere: ``key_path``), ``crl.pem``,
``index.json``, and ``parties/<party>/<serial>.pem`` with ``<serial>.key`` (0600).
Every operation changes its files all-or-nothing (``exchange.pki._files.commit``).
"""

from __future__ import annotations

import json
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
from exchange.exceptions import (
    CAKeyOffline,
    CertificateExpired,
    CertificateRevoked,
    PKIError,
    PKIFileCorrupt,
    UnknownParty,
)
from exchange.pki._files import JOURNAL_FILE, PRIVATE, PUBLIC, commit, locked, read_certificate
from exchange.pki.credentials import Credentials
from exchange.pki.trust import CRL_FILE, PARTY_URI_PREFIX, ROOT_FILE, crl_number

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


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class CertificateAuthority:
    """The exchange's root CA, kept in a certs directory.

    ``key_path`` is where the root's private key is (default ``root.key`` in the directory);
    it may be absent while the key is kept offline: then only operations that sign fail.
    """

    def __init__(
        self, path: Path, clock: Clock = SYSTEM_CLOCK, key_path: Path | None = None
    ) -> None:
        self.path = path
        self.clock = clock
        self.key_path = key_path or path / ROOT_KEY_FILE

    # --- root and CRL -------------------------------------------------------------------

    def init_ca(self, name: str = "Kazan Inter-Agency Exchange Root CA", days: int = 3650) -> None:
        """Create the root key and self-signed root certificate, and an empty CRL.

        Raises:
            PKIError (pki-error): a root CA already exists here.
        """
        with locked(self.path):
            if (self.path / ROOT_FILE).exists() or self.key_path.exists():
                raise PKIError(f"a root CA already exists in {self.path}; refusing to replace it")
            self._init_ca(name, days)

    def _init_ca(self, name: str, days: int) -> None:
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
        crl = self._sign_crl(cert, key, [], days=7)
        # The key first: a root.pem without its key would look like a CA kept offline.
        commit(
            self.path,
            [
                (self.key_path, _key_pem(key), PRIVATE),
                (self.path / ROOT_FILE, _cert_pem(cert), PUBLIC),
                (self.path / INDEX_FILE, _index_json([]), PUBLIC),
                (self.path / CRL_FILE, _crl_pem(crl), PUBLIC),
            ],
        )

    def write_crl(self, days: int = 7) -> x509.CertificateRevocationList:
        """Sign and publish a fresh CRL listing every revoked certificate.

        Raises:
            PKIError (pki-error): no root CA here.
            CAKeyOffline (ca-key-offline): the root key is not at ``key_path``.
            PKIFileCorrupt (pki-file-corrupt): index.json, root.pem or crl.pem is unreadable.
        """
        with locked(self.path):
            entries = self._load_index()
            root, key = self._root()
            crl = self._sign_crl(root, key, entries, days)
            commit(self.path, [(self.path / CRL_FILE, _crl_pem(crl), PUBLIC)])
        return crl

    def _sign_crl(
        self,
        root: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        entries: list[IssuedCertificate],
        days: int,
    ) -> x509.CertificateRevocationList:
        now = self.clock.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(root.subject)
            .last_update(now - _BACKDATE)
            .next_update(now + timedelta(days=days))
            .add_extension(x509.CRLNumber(self._next_crl_number()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        for entry in entries:
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
        return builder.sign(key, hashes.SHA256())

    def _next_crl_number(self) -> int:
        # Trust stores refuse a CRL numbered below one they saw, so numbers must strictly
        # increase even when the clock stands still or steps back.
        path = self.path / CRL_FILE
        try:
            previous = x509.load_pem_x509_crl(path.read_bytes())
        except FileNotFoundError:
            last = 0
        except ValueError:
            raise PKIFileCorrupt(
                f"{path} is not a readable CRL (corrupt?); restore it from a backup, or remove "
                "it and run `exchange certs crl` to publish a fresh one",
                path=str(path),
            ) from None
        else:
            last = crl_number(previous) or 0
        return max(last + 1, int(self.clock.now().timestamp() * 1000))

    # --- party certificates -------------------------------------------------------------

    def issue(
        self, party: str, key_type: KeyType = KeyType.EC, days: int = 365
    ) -> IssuedCertificate:
        """Issue the first signing certificate of a party.

        Raises:
            PKIError (pki-error): bad party id, or the party already has a valid certificate
                (use ``rotate``).
            CAKeyOffline (ca-key-offline): the root key is not at ``key_path``.
        """
        with locked(self.path):
            entries = self._load_index()
            if self._active(entries, party):
                raise PKIError(
                    f"{party} already has a valid certificate; use `rotate` for a new one"
                )
            return self._issue(entries, party, key_type, days)

    def rotate(
        self, party: str, key_type: KeyType | None = None, days: int = 365
    ) -> IssuedCertificate:
        """Issue a new certificate for a party; the old ones stay valid until they end.

        Raises:
            UnknownParty (unknown-party): the party has no certificate to rotate.
            CAKeyOffline (ca-key-offline): the root key is not at ``key_path``.
        """
        with locked(self.path):
            entries = self._load_index()
            active = self._active(entries, party)
            if not active:
                raise UnknownParty(f"{party} has no valid certificate to rotate; use `issue`")
            return self._issue(entries, party, key_type or KeyType(active[-1].key_type), days)

    def _issue(
        self, entries: list[IssuedCertificate], party: str, key_type: KeyType, days: int
    ) -> IssuedCertificate:
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
        entry = IssuedCertificate(
            serial=serial,
            party=party,
            key_type=key_type.value,
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
        )
        # The index last: it names only certificates whose files are already in place.
        commit(
            self.path,
            [
                (self._party_dir(party) / f"{serial}.key", _key_pem(key), PRIVATE),
                (self._party_dir(party) / f"{serial}.pem", _cert_pem(cert), PUBLIC),
                (self.path / INDEX_FILE, _index_json([*entries, entry]), PUBLIC),
            ],
        )
        return entry

    def revoke(
        self, party_or_serial: str, reason: RevocationReason = RevocationReason.UNSPECIFIED
    ) -> list[IssuedCertificate]:
        """Revoke a certificate by serial, or every valid certificate of a party; publish the CRL.

        Raises:
            UnknownParty (unknown-party): nothing valid matches.
            CAKeyOffline (ca-key-offline): the root key is not at ``key_path``; nothing changed.
        """
        with locked(self.path):
            return self._revoke(party_or_serial, reason)

    def _revoke(self, party_or_serial: str, reason: RevocationReason) -> list[IssuedCertificate]:
        entries = self._load_index()
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
        root, key = self._root()
        for entry in targets:
            entry.revoked_at = now.isoformat()
            entry.reason = reason.value
        crl = self._sign_crl(root, key, entries, days=7)
        # The CRL before the index: should the renames stop between the two, nodes already
        # refuse the certificate, and a retry of revoke still finds it to revoke.
        commit(
            self.path,
            [
                (self.path / CRL_FILE, _crl_pem(crl), PUBLIC),
                (self.path / INDEX_FILE, _index_json(entries), PUBLIC),
            ],
        )
        return targets

    def credentials(self, party: str) -> Credentials:
        """The party's newest valid signing key and certificate.

        Raises:
            CertificateRevoked (certificate-revoked): every certificate it had is revoked.
            CertificateExpired (certificate-expired): its certificates have all ended.
            UnknownParty (unknown-party): the CA never issued the party a certificate.
        """
        entries = self.index()
        active = self._active(entries, party)
        if not active:
            # Say why: "unknown party" after a revoke or an expiry sends people the wrong way.
            had = [entry for entry in entries if entry.party == party]
            if had and all(entry.revoked_at is not None for entry in had):
                raise CertificateRevoked(
                    f"every certificate of {party!r} in {self.path} is revoked; issue a new "
                    f"one with `exchange certs issue {party}`"
                )
            if had:
                raise CertificateExpired(
                    f"the certificates of {party!r} in {self.path} have ended or are revoked; "
                    f"issue a new one with `exchange certs issue {party}`"
                )
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
                path = self._party_dir(entry.party) / f"{entry.serial}.pem"
                return read_certificate(
                    path, f"restore it from a backup, or run `exchange certs rotate {entry.party}`"
                )
        raise UnknownParty(f"no certificate with serial {serial}")

    def index(self) -> list[IssuedCertificate]:
        """Every certificate this CA issued, oldest first.

        Raises:
            PKIFileCorrupt (pki-file-corrupt): index.json is unreadable.
        """
        if (self.path / JOURNAL_FILE).exists():
            with locked(self.path):  # finishes the interrupted operation
                pass
        return self._load_index()

    def active(self, party: str) -> list[IssuedCertificate]:
        """The party's certificates that are valid now (expiring ones included), oldest first."""
        return self._active(self.index(), party)

    def _active(self, entries: list[IssuedCertificate], party: str) -> list[IssuedCertificate]:
        now = self.clock.now()
        return [
            entry
            for entry in entries
            if entry.party == party and entry.status(now) in ("valid", "expiring")
        ]

    # --- internals ----------------------------------------------------------------------

    def _party_dir(self, party: str) -> Path:
        return self.path / "parties" / party

    def _root(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        root_path = self.path / ROOT_FILE
        try:
            cert = read_certificate(
                root_path, "restore it (and crl.pem) from a backup of the CA directory"
            )
        except FileNotFoundError:
            raise PKIError(
                f"no root CA (root.pem and root.key) in {self.path}; run `exchange certs init-ca`"
            ) from None
        try:
            key_pem = self.key_path.read_bytes()
        except FileNotFoundError:
            raise CAKeyOffline(
                f"the CA key is offline: {self.key_path} does not exist; mount it there or set "
                "EXCHANGE_CA_KEY to its path, then run the command again (nothing was changed)",
                path=str(self.key_path),
            ) from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError:
            raise PKIFileCorrupt(
                f"{self.key_path} is not a readable PEM private key (corrupt?); restore it "
                "from the CA key's backup (nothing was changed)",
                path=str(self.key_path),
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PKIError(f"the root key {self.key_path} must be an EC key")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
            raise PKIError(f"{self.key_path} is not the key of {root_path}; mount the right key")
        return cert, key

    def _load_index(self) -> list[IssuedCertificate]:
        path = self.path / INDEX_FILE
        try:
            rows = json.loads(path.read_bytes())
            if not isinstance(rows, list):
                raise ValueError("not a JSON list")
            return [_index_entry(row) for row in rows]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as exc:
            raise PKIFileCorrupt(
                f"{path} is corrupt ({exc}); restore it from a backup of the CA directory "
                f"(the certificates it lists are in {self.path / 'parties'})",
                path=str(path),
            ) from None


def _index_entry(row: object) -> IssuedCertificate:
    if not isinstance(row, dict):
        raise ValueError("an entry is not a JSON object")
    entry = IssuedCertificate(**row)
    for name in ("serial", "party", "key_type", "not_before", "not_after"):
        if not isinstance(getattr(entry, name), str):
            raise ValueError(f"{name} of an entry is not a string")
    if _normal_serial(entry.serial) != entry.serial:
        raise ValueError(f"serial {entry.serial!r} is not lowercase hex")
    KeyType(entry.key_type)
    for stamp in (entry.not_before, entry.not_after, entry.revoked_at):
        if stamp is not None:
            datetime.fromisoformat(stamp)
    if entry.reason is not None:
        RevocationReason(entry.reason)
    return entry


def _index_json(entries: list[IssuedCertificate]) -> bytes:
    return json.dumps([asdict(entry) for entry in entries], indent=2).encode()


def _crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)
