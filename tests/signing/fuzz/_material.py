"""What the fuzz harness mutates: a PKI, valid signed envelopes, broken certificates.

Made once per process, on first use (hypothesis strategies are built at import time; the
PKI is not).
"""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from exchange._clock import FrozenClock
from exchange.envelope.model import Envelope
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat, seal
from exchange.testing import ThrowawayPKI, make_envelope

CLOCK = FrozenClock()
_EC_PUBLIC_KEY = bytes.fromhex("06072A8648CE3D0201")  # OID 1.2.840.10045.2.1, DER
_BASIC_CONSTRAINTS = bytes.fromhex("0603551d13")
_KEY_USAGE = bytes.fromhex("0603551d0f")


@dataclass(frozen=True)
class Material:
    """A PKI and what the mutations start from."""

    trust: TrustStore
    signer: Credentials
    xml: bytes  # a valid XML-DSig envelope
    jws: bytes  # a valid JWS envelope
    certificates: dict[str, bytes]  # DER, good and broken, by name

    def certificate_b64(self, name: str) -> str:
        """A certificate (by name) in standard base64."""
        return base64.b64encode(self.certificates[name]).decode("ascii")


@cache
def material() -> Material:
    """The shared material (one PKI per process, on the frozen clock)."""
    pki = ThrowawayPKI.create(Path(tempfile.mkdtemp(prefix="fuzz-pki-")), clock=CLOCK)
    return material_of(pki, make_envelope(CLOCK))


def material_of(pki: ThrowawayPKI, envelope: Envelope) -> Material:
    """Material from ``pki``: ``envelope`` sealed by its sender, and broken certificates."""
    signer = pki.credentials(envelope.sender)
    good = signer.certificate_der
    trust = pki.trust()
    root = trust.root.public_bytes(serialization.Encoding.DER)
    return Material(
        trust=trust,
        signer=signer,
        xml=seal(envelope, signer, WireFormat.XML),
        jws=seal(envelope, signer, WireFormat.JSON),
        certificates={
            "good": good,
            "root": root,
            "other-party": pki.credentials("improvement").certificate_der,
            # Issue 12's second class: a public key algorithm nobody knows.
            "unknown-key-algorithm": good.replace(_EC_PUBLIC_KEY, _EC_PUBLIC_KEY[:-1] + b"\x09"),
            "duplicate-extension": good.replace(_BASIC_CONSTRAINTS, _KEY_USAGE),
            "truncated": good[: len(good) // 2],
            "empty": b"",
            "not-der": b"hello, certificate",
        },
    )
