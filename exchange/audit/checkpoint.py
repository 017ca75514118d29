"""Signed audit checkpoints: a party vouches for the head of its chain at a seq.

A hash chain alone does not stop someone with write access from recomputing it; a
checkpoint signed with the party's key does (DESIGN.md, More pitfalls). The signer's
certificate travels inside the checkpoint, and is judged at the checkpoint's time.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from exchange._hazmat.signature import Algorithm, sign, verify
from exchange.exceptions import CheckpointInvalid, ExchangeError
from exchange.ledger.chain import canonical_time
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The party's signed statement: "my chain's record ``seq`` has hash ``hash``"."""

    party: str
    seq: int
    hash: str
    at: datetime
    algorithm: str
    signature: bytes
    certificate: bytes  # DER

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return signed_bytes(self.party, self.seq, self.hash, self.at)

    def to_json(self) -> dict[str, Any]:
        """The checkpoint as a JSON document (binary fields in standard base64)."""
        return {
            "party": self.party,
            "seq": self.seq,
            "hash": self.hash,
            "at": canonical_time(self.at),
            "alg": self.algorithm,
            "sig": base64.b64encode(self.signature).decode(),
            "cert": base64.b64encode(self.certificate).decode(),
        }

    def dumps(self) -> bytes:
        """The JSON document as bytes, as stored and shipped."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()


def signed_bytes(party: str, seq: int, hash_: str, at: datetime) -> bytes:
    """Canonical JSON of {party, seq, hash, at}: what a checkpoint signs."""
    doc = {"party": party, "seq": seq, "hash": hash_, "at": canonical_time(at)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def make_checkpoint(credentials: Credentials, seq: int, hash_: str, at: datetime) -> Checkpoint:
    """Sign the head ``(seq, hash_)`` of the credentials' party's chain at time ``at``."""
    party = credentials.party
    return Checkpoint(
        party=party,
        seq=seq,
        hash=hash_,
        at=at,
        algorithm=credentials.algorithm.value,
        signature=sign(credentials.key, signed_bytes(party, seq, hash_, at)),
        certificate=credentials.certificate_der,
    )


def parse_checkpoint(raw: bytes | dict[str, Any]) -> Checkpoint:
    """Read a checkpoint document (not yet verified).

    Raises:
        CheckpointInvalid (checkpoint-invalid): not a checkpoint document.
    """
    try:
        doc = json.loads(raw) if isinstance(raw, bytes) else raw
        return Checkpoint(
            party=str(doc["party"]),
            seq=int(doc["seq"]),
            hash=str(doc["hash"]),
            at=datetime.fromisoformat(doc["at"]),
            algorithm=str(doc["alg"]),
            signature=base64.b64decode(doc["sig"], validate=True),
            certificate=base64.b64decode(doc["cert"], validate=True),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointInvalid(f"not a checkpoint document: {exc!r}") from None


def verify_checkpoint(checkpoint: Checkpoint, trust: TrustStore, party: str | None = None) -> None:
    """Check the signature, and the certificate at the checkpoint's time, for its party.

    Raises:
        CheckpointInvalid (checkpoint-invalid): naming ``data["seq"]``; the signature does not
            verify, the certificate is not trusted at that time, or it names another party.
    """
    seq = checkpoint.seq
    expected = party or checkpoint.party
    try:
        cert = x509.load_der_x509_certificate(checkpoint.certificate)
        signer = trust.check(cert, checkpoint.at)
        if signer.party != expected or checkpoint.party != expected:
            raise CheckpointInvalid(
                f"checkpoint at seq {seq} of {expected} is signed by {signer.party}",
                seq=seq,
                party=expected,
            )
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"{type(key).__name__} keys are not allowed")
        verify(
            key, Algorithm(checkpoint.algorithm), checkpoint.signature, checkpoint.signed_bytes()
        )
    except CheckpointInvalid:
        raise
    except (ExchangeError, ValueError) as exc:
        reason = exc.message if isinstance(exc, ExchangeError) else str(exc)
        raise CheckpointInvalid(
            f"checkpoint at seq {seq} of {expected} does not verify: {reason}",
            seq=seq,
            party=expected,
        ) from None
