"""The trust store: root CA, CRL, and the check that a signer's certificate is good at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID

from exchange.exceptions import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUnknown,
    CertificateUsage,
    RevocationUnknown,
)

PARTY_URI_PREFIX = "urn:kazan:exchange:party:"
ROOT_FILE = "root.pem"
CRL_FILE = "crl.pem"
_CACHE_LIMIT = 4096
_SHA256 = hashes.SHA256()


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed: the party named by a certificate that passed every check."""

    party: str
    serial: int
    not_after: datetime


def party_of(cert: x509.Certificate) -> str:
    """The party id in a certificate's URI SAN.

    Raises:
        CertificateUsage (certificate-usage): no single party URI in the certificate.
    """
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        raise CertificateUsage("certificate has no subjectAltName naming a party") from None
    uris = [
        uri[len(PARTY_URI_PREFIX) :]
        for uri in san.value.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(PARTY_URI_PREFIX)
    ]
    if len(uris) != 1:
        raise CertificateUsage("certificate must name exactly one party in its URI SAN")
    return uris[0]


class TrustStore:
    """Root certificate and CRL; judges signer certificates at a given time.

    The CRL is re-read when its file changes, so a revocation takes effect without restart.
    """

    def __init__(self, root: x509.Certificate, crl: x509.CertificateRevocationList | None) -> None:
        self._root = root
        self._crl: x509.CertificateRevocationList | None = None
        self._crl_signed = False
        self._set_crl(crl)
        self._chained: dict[bytes, bool] = {}
        self._source: Path | None = None
        self._crl_mtime = 0.0

    @classmethod
    def from_dir(cls, path: Path) -> TrustStore:
        """Load ``root.pem`` and ``crl.pem`` from a certs directory.

        Raises:
            CertificateUnknown (certificate-unknown): no root certificate there.
        """
        try:
            root = x509.load_pem_x509_certificate((path / ROOT_FILE).read_bytes())
        except FileNotFoundError:
            raise CertificateUnknown(
                f"no root CA at {path / ROOT_FILE}; run `exchange certs init-ca` first"
            ) from None
        store = cls(root, None)
        store._source = path
        store.refresh()
        return store

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor."""
        return self._root

    def refresh(self) -> None:
        """Re-read the CRL file if it changed since the last look."""
        if self._source is None:
            return
        crl_path = self._source / CRL_FILE
        try:
            mtime = crl_path.stat().st_mtime
        except FileNotFoundError:
            self._set_crl(None)
            return
        if mtime != self._crl_mtime:
            try:
                crl = x509.load_pem_x509_crl(crl_path.read_bytes())
            except ValueError:
                crl = None
            self._set_crl(crl)
            self._crl_mtime = mtime

    def _set_crl(self, crl: x509.CertificateRevocationList | None) -> None:
        # The CRL signature is checked once per load, not once per envelope.
        self._crl = crl
        self._crl_signed = crl is not None and crl.issuer == self._root.subject and (
            crl.is_signature_valid(self._root.public_key())  # type: ignore[arg-type]
        )

    def check(self, cert: x509.Certificate, at: datetime) -> Signer:
        """Judge a signer's certificate at time ``at``; return who it names.

        Raises:
            CertificateUnknown (certificate-unknown): not issued by our root.
            CertificateNotYetValid (certificate-not-yet-valid), CertificateExpired
                (certificate-expired): outside its validity at ``at``.
            CertificateUsage (certificate-usage): may not sign envelopes, or names no party.
            RevocationUnknown (revocation-unknown): no valid CRL covers ``at``.
            CertificateRevoked (certificate-revoked): revoked at or before ``at``.
        """
        self._check_chain(cert, at)
        if at < cert.not_valid_before_utc:
            raise CertificateNotYetValid(
                f"certificate {cert.serial_number:x} is valid only from "
                f"{cert.not_valid_before_utc.isoformat()}",
                serial=cert.serial_number,
            )
        if at > cert.not_valid_after_utc:
            raise CertificateExpired(
                f"certificate {cert.serial_number:x} expired on "
                f"{cert.not_valid_after_utc.isoformat()}",
                serial=cert.serial_number,
            )
        self._check_usage(cert)
        self._check_revocation(cert, at)
        return Signer(party_of(cert), cert.serial_number, cert.not_valid_after_utc)

    def _check_chain(self, cert: x509.Certificate, at: datetime) -> None:
        root = self._root
        if not root.not_valid_before_utc <= at <= root.not_valid_after_utc:
            raise CertificateUnknown("the root CA is not valid at this time")
        fingerprint = cert.fingerprint(_SHA256)
        if fingerprint not in self._chained:
            try:
                cert.verify_directly_issued_by(root)
                chained = True
            except (ValueError, TypeError, InvalidSignature):
                chained = False
            if len(self._chained) >= _CACHE_LIMIT:
                self._chained.clear()
            self._chained[fingerprint] = chained
        if not self._chained[fingerprint]:
            raise CertificateUnknown(
                f"certificate {cert.serial_number:x} ({cert.subject.rfc4514_string()}) "
                "is not issued by this exchange's root CA",
                serial=cert.serial_number,
            )

    @staticmethod
    def _check_usage(cert: x509.Certificate) -> None:
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound as exc:
            raise CertificateUsage(f"certificate lacks {exc.oid._name}") from None
        if not usage.digital_signature:
            raise CertificateUsage("certificate key usage does not allow digitalSignature")
        if constraints.ca:
            raise CertificateUsage("a CA certificate may not sign envelopes")

    def _check_revocation(self, cert: x509.Certificate, at: datetime) -> None:
        crl = self._crl
        if crl is None:
            raise RevocationUnknown("no readable CRL in the trust store; run `exchange certs crl`")
        if not self._crl_signed:
            raise RevocationUnknown("the CRL is not signed by the root CA")
        next_update = crl.next_update_utc
        if next_update is None or at > next_update or at < crl.last_update_utc:
            raise RevocationUnknown(
                "the CRL does not cover this time; an admin must run `exchange certs crl`"
            )
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and entry.revocation_date_utc <= at:
            raise CertificateRevoked(
                f"certificate {cert.serial_number:x} was revoked on "
                f"{entry.revocation_date_utc.isoformat()}",
                serial=cert.serial_number,
            )
