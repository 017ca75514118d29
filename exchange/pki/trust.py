"""The trust store: root CA, CRL, and the check that a signer's certificate is good at a time."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from exchange.exceptions import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CertificateUnknown,
    CertificateUsage,
    PKIError,
    PKIFileCorrupt,
    RevocationUnknown,
)
from exchange.pki._files import PUBLIC, read_certificate, write_file

PARTY_URI_PREFIX = "urn:kazan:exchange:party:"
ROOT_FILE = "root.pem"
CRL_FILE = "crl.pem"
CRL_NUMBERS_FILE = "crl-numbers.json"
CRL_RECHECK_SECONDS = 1.0
_CACHE_LIMIT = 4096
_CrlState = tuple[x509.CertificateRevocationList | None, datetime | None, str | None]


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
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
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


def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    """The CRL number extension's value, or None when the CRL has none."""
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


class CrlNumbers(Protocol):
    """Where a trust store keeps the highest CRL number it accepted, per issuing root."""

    def highest(self, issuer: str) -> int | None:
        """The highest CRL number accepted from ``issuer``, or None if none yet."""

    def remember(self, issuer: str, number: int) -> None:
        """Keep ``number`` as the highest accepted from ``issuer`` (it is higher than before)."""


class MemoryCrlNumbers:
    """CRL numbers kept for the life of the process (what a store without a place gets)."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def highest(self, issuer: str) -> int | None:
        """The highest CRL number accepted from ``issuer``, or None."""
        return self.numbers.get(issuer)

    def remember(self, issuer: str, number: int) -> None:
        """Keep ``number`` in memory."""
        self.numbers[issuer] = number


class CrlNumberFile:
    """CRL numbers kept in a JSON file beside the trust store (for the command line)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, certs_dir: Path) -> CrlNumberFile:
        """The file in a certs directory, next to the ``crl.pem`` it guards."""
        return cls(certs_dir / CRL_NUMBERS_FILE)

    def highest(self, issuer: str) -> int | None:
        """The highest CRL number accepted from ``issuer``, or None.

        Raises:
            PKIFileCorrupt (pki-file-corrupt): the file is unreadable.
        """
        return self._read().get(issuer)

    def remember(self, issuer: str, number: int) -> None:
        """Write ``number`` to the file (atomically, mode 0644).

        Raises:
            PKIError (pki-error): the file cannot be written (the CRL is then not trusted).
        """
        numbers = self._read()
        numbers[issuer] = number
        try:
            write_file(self.path, json.dumps(numbers, indent=2).encode(), PUBLIC)
        except OSError as exc:
            raise PKIError(
                f"cannot record the CRL number in {self.path} ({exc.strerror or exc}); make "
                "its directory writable, then run the command again",
                path=str(self.path),
            ) from None

    def _read(self) -> dict[str, int]:
        try:
            numbers = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError:
            numbers = None
        if not isinstance(numbers, dict) or not all(
            isinstance(value, int) for value in numbers.values()
        ):
            raise PKIFileCorrupt(
                f"{self.path} (the highest CRL numbers seen) is corrupt; restore it from a "
                "backup, or remove it only if you are sure crl.pem is the CA's current CRL",
                path=str(self.path),
            )
        return numbers


class TrustStore:
    """Root certificate and CRL; judges signer certificates at a given time.

    A store loaded from a directory looks at ``crl.pem`` again at most once a second and
    re-reads it when it changed, so a revocation takes effect without restart. Every CRL,
    first or reloaded, must carry a CRL number no lower than the highest one the store's
    ``CrlNumbers`` has seen from the root, so an old CRL copied back cannot un-revoke.
    """

    def __init__(
        self,
        root: x509.Certificate,
        crl: x509.CertificateRevocationList | None,
        numbers: CrlNumbers | None = None,
    ) -> None:
        self._root = root
        spki = root.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._issuer = hashlib.sha256(spki).hexdigest()
        self._numbers: CrlNumbers = numbers or MemoryCrlNumbers()
        self._source: Path | None = None
        # (crl, next update, problem) in one attribute: nodes judge certificates in worker
        # threads, and a reader must never pair a new CRL with the old CRL's verdict.
        self._crl_state: _CrlState = (None, None, "no CRL")
        self._refreshing = threading.Lock()
        self._set_crl(crl)
        # Keyed by id(): hashing a certificate hashes its DER; the verifiers hand us the
        # same cached object for the same signer, and the entry keeps it alive.
        self._known: dict[int, tuple[x509.Certificate, Signer, datetime]] = {}
        self._crl_stamp: tuple[int, int, int] | None = None
        self._looked_at = time.monotonic()

    @classmethod
    def from_dir(cls, path: Path, numbers: CrlNumbers | None = None) -> TrustStore:
        """Load ``root.pem`` and ``crl.pem`` from a certs directory.

        Raises:
            CertificateUnknown (certificate-unknown): no root certificate there.
            PKIFileCorrupt (pki-file-corrupt): root.pem is unreadable.
        """
        try:
            root = read_certificate(
                path / ROOT_FILE, "copy the exchange's root.pem there again from the CA"
            )
        except FileNotFoundError:
            raise CertificateUnknown(
                f"no root CA at {path / ROOT_FILE}; run `exchange certs init-ca` first"
            ) from None
        store = cls(root, None, numbers)
        store._source = path
        store.refresh()
        return store

    def use_numbers(self, numbers: CrlNumbers) -> None:
        """Keep CRL numbers in ``numbers`` from now on, and judge the current CRL by them."""
        self._numbers = numbers
        self._set_crl(self._crl_state[0])

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor."""
        return self._root

    def crl_state(self) -> tuple[datetime | None, str | None]:
        """The CRL's next update, and why it cannot judge revocation now (None when it can).

        Looks at the file again first: what health probes and metrics report.
        """
        self.refresh()
        _, next_update, problem = self._crl_state
        return next_update, problem

    def refresh(self) -> None:
        """Re-read the CRL file if it changed since the last look."""
        if self._source is None:
            return
        with self._refreshing:
            self._refresh(self._source)

    def _refresh(self, source: Path) -> None:
        self._looked_at = time.monotonic()
        crl_path = source / CRL_FILE
        try:
            st = crl_path.stat()
        except FileNotFoundError:
            self._set_crl(None)
            self._crl_stamp = None
            return
        # mtime alone misses a replacement within one timestamp tick (or with a preserved
        # mtime); os.replace() always gives the new file a new inode.
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._crl_stamp:
            try:
                crl = x509.load_pem_x509_crl(crl_path.read_bytes())
            except ValueError:
                problem = (
                    f"{crl_path} is not a readable CRL (corrupt?); copy the CA's crl.pem there "
                    "again, or have an admin run `exchange certs crl`"
                )
                self._crl_state = (None, None, problem)
            else:
                self._set_crl(crl)
            self._crl_stamp = stamp

    def _set_crl(self, crl: x509.CertificateRevocationList | None) -> None:
        # The CRL signature and number are checked once per load, not once per envelope.
        next_update = crl.next_update_utc if crl is not None else None
        self._crl_state = (crl, next_update, self._judge_crl(crl))

    def _judge_crl(self, crl: x509.CertificateRevocationList | None) -> str | None:
        if crl is None:
            return "no readable CRL in the trust store; run `exchange certs crl`"
        signed = crl.issuer == self._root.subject and crl.is_signature_valid(
            self._root.public_key()  # type: ignore[arg-type]
        )
        if not signed:
            return "the CRL is not signed by the root CA"
        # Only a CRL signed by our root may move the number, or anyone could raise it.
        number = crl_number(crl)
        if number is None:
            return "the CRL carries no CRL number; an admin must run `exchange certs crl`"
        highest = self._numbers.highest(self._issuer)
        if highest is not None and number < highest:
            return (
                f"an older CRL (number {number}) than one already seen (number {highest}) was "
                "presented: someone put back an old crl.pem; publish the CA's current crl.pem "
                "to this node again, or have an admin run `exchange certs crl`"
            )
        if highest is None or number > highest:
            self._numbers.remember(self._issuer, number)
        return None

    def check(self, cert: x509.Certificate, at: datetime) -> Signer:
        """Judge a signer's certificate at time ``at``; return who it names.

        Raises:
            CertificateUnknown (certificate-unknown): not issued by our root.
            CertificateUsage (certificate-usage): may not sign envelopes, or names no party.
            CertificateNotYetValid (certificate-not-yet-valid), CertificateExpired
                (certificate-expired): outside its validity at ``at``.
            RevocationUnknown (revocation-unknown): no valid CRL covers ``at``.
            CertificateRevoked (certificate-revoked): revoked at or before ``at``.
        """
        if time.monotonic() - self._looked_at > CRL_RECHECK_SECONDS:
            self.refresh()
        root = self._root
        if not root.not_valid_before_utc <= at <= root.not_valid_after_utc:
            raise CertificateUnknown("the root CA is not valid at this time")
        known = self._known.get(id(cert))
        _, signer, not_before = known if known and known[0] is cert else self._learn(cert)
        if at < not_before:
            raise CertificateNotYetValid(
                f"certificate {signer.serial:x} is valid only from {not_before.isoformat()}",
                serial=signer.serial,
            )
        if at > signer.not_after:
            raise CertificateExpired(
                f"certificate {signer.serial:x} expired on {signer.not_after.isoformat()}",
                serial=signer.serial,
            )
        self._check_revocation(signer.serial, at)
        return signer

    def _learn(self, cert: x509.Certificate) -> tuple[x509.Certificate, Signer, datetime]:
        # What does not depend on time (chain signature, usage, party) is checked once per
        # certificate and cached; validity and revocation are judged on every call.
        try:
            cert.verify_directly_issued_by(self._root)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateUnknown(
                f"certificate {cert.serial_number:x} ({cert.subject.rfc4514_string()}) "
                "is not issued by this exchange's root CA",
                serial=cert.serial_number,
            ) from None
        _check_usage(cert)
        facts = (
            cert,
            Signer(party_of(cert), cert.serial_number, cert.not_valid_after_utc),
            cert.not_valid_before_utc,
        )
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known[id(cert)] = facts
        return facts

    def _check_revocation(self, serial: int, at: datetime) -> None:
        crl, next_update, problem = self._crl_state
        if problem is not None or crl is None:
            raise RevocationUnknown(problem or "no CRL")
        # A CRL issued after ``at`` still answers for ``at`` (it lists every revocation up to
        # its issue, with dates): what a signature from the past is judged with, offline.
        if next_update is None or at > next_update:
            raise RevocationUnknown(
                "the CRL does not cover this time; an admin must run `exchange certs crl`"
            )
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        if entry is not None and entry.revocation_date_utc <= at:
            raise CertificateRevoked(
                f"certificate {serial:x} was revoked on {entry.revocation_date_utc.isoformat()}",
                serial=serial,
            )


def _check_usage(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise CertificateUsage(f"certificate lacks the {exc.oid.dotted_string} extension") from None
    if not usage.digital_signature:
        raise CertificateUsage("certificate key usage does not allow digitalSignature")
    if constraints.ca:
        raise CertificateUsage("a CA certificate may not sign envelopes")
