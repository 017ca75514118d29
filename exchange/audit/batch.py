"""What a node ships to the collector: a signed batch of its audit records and checkpoints.

Only a party can write its own audit trail: a batch is a JWS (``typ`` kzn-audit-batch+jws)
signed with the party's key, whose payload carries each record as the canonical bytes its
hash covers, so the records travel unchanged. The payload is JSON with sorted members::

    {"checkpoints": [...], "envelopes": {}, "party": "improvement",
     "records": [{"hash": "...", "record": <canonical bytes of the record>}, ...],
     "signed_at": "2026-...", "version": 2}

``envelopes`` is the envelope archive's part (DESIGN.md): the wire bytes (standard base64)
of envelopes the batch's records name, keyed by the SHA-256 digest those records carry. The
signature covers them, but the collector keeps one only if it hashes to its key and a record
of the batch names that digest (``exchange.audit.archive``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exchange.codec import b64url
from exchange.codec.json import loads_strict
from exchange.exceptions import AuditTampered, ExchangeError, Malformed, SenderMismatch
from exchange.ledger.chain import canonical_bytes, canonical_time, record_hash
from exchange.ledger.codec import record_from_json
from exchange.ledger.event import AuditRecord
from exchange.pki.credentials import Credentials
from exchange.pki.trust import Signer, TrustStore
from exchange.signing.jws.document import verify_document
from exchange.signing.jws.profile import AUDIT_BATCH_TYPE, CONTENT_TYPES
from exchange.signing.jws.signer import sign_document

BATCH_VERSION = 2
BATCH_CONTENT_TYPE = CONTENT_TYPES[AUDIT_BATCH_TYPE]
MAX_BATCH_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive audit records of one party (as its store holds them) and its checkpoints."""

    party: str
    records: Sequence[AuditRecord]
    checkpoints: Sequence[bytes]
    # Unverified until the collector's archive check: wire bytes by the digest they claim.
    envelopes: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerifiedBatch:
    """A batch whose signature, signer and records passed every check."""

    batch: Batch
    signer: Signer
    signed_at: datetime
    digest: str  # SHA-256 of the JWS as received


def seal_batch(batch: Batch, credentials: Credentials, at: datetime) -> bytes:
    """The message body: the batch signed by its party's key at time ``at``."""
    records = ",".join(
        f'{{"hash":"{r.hash}","record":'
        f"{canonical_bytes(r.seq, r.at, r.party, r.event, r.prev_hash).decode()}}}"
        for r in batch.records
    )
    checkpoints = ",".join(c.decode() for c in batch.checkpoints)
    envelopes = json.dumps(
        {key: base64.b64encode(wire).decode("ascii") for key, wire in batch.envelopes.items()},
        sort_keys=True,
        separators=(",", ":"),
    )
    # Built by hand so each record's canonical bytes appear in the payload as they were hashed.
    payload = (
        f'{{"checkpoints":[{checkpoints}],"envelopes":{envelopes},'
        f'"party":{json.dumps(batch.party)},"records":[{records}],'
        f'"signed_at":"{canonical_time(at)}","version":{BATCH_VERSION}}}'
    )
    return sign_document(payload.encode(), credentials, AUDIT_BATCH_TYPE, BATCH_CONTENT_TYPE)


def open_batch(raw: bytes, trust: TrustStore, *, max_size: int = MAX_BATCH_BYTES) -> VerifiedBatch:
    """Verify a batch: signature and certificate (at its signing time), signer, records.

    Raises:
        Malformed (malformed), TooLarge (too-large): not a batch.
        WrongDocumentType (wrong-document-type): another signed document (an envelope ...).
        SignatureInvalid (signature-invalid), UnsupportedAlgorithm (unsupported-algorithm).
        TrustError subclasses: the signer certificate is not good at the signing time.
        SenderMismatch (sender-mismatch): signed by another party than the batch's.
        AuditTampered (audit-tampered): naming ``data["seq"]``; a record of another party, a
            record whose content does not match its hash, records not consecutive.
    """
    document = verify_document(raw, trust, AUDIT_BATCH_TYPE, _signed_at, max_size=max_size)
    batch = _read(loads_strict(document.payload))
    if document.signer.party != batch.party:
        raise SenderMismatch(
            f"a batch of {batch.party} signed by {document.signer.party}",
            serial=document.signer.serial,
            party=batch.party,
        )
    _check_records(batch)
    return VerifiedBatch(batch, document.signer, document.signed_at, document.digest)


def claimed_party(raw: bytes) -> str | None:
    """Unverified: the party a batch (or an unsigned imitation) says it is from, for the
    finding and the log of what was refused."""
    try:
        doc = loads_strict(raw)
        if isinstance(doc, dict) and isinstance(doc.get("payload"), str):
            doc = loads_strict(b64url.decode(doc["payload"], "payload"))
    except ExchangeError:
        return None
    party = doc.get("party") if isinstance(doc, dict) else None
    return party if isinstance(party, str) else None


def _signed_at(payload: bytes) -> datetime:
    doc = loads_strict(payload)
    try:
        at = datetime.fromisoformat(doc["signed_at"])
    except (KeyError, TypeError, ValueError):
        raise Malformed("an audit batch needs signed_at, an ISO time") from None
    if at.tzinfo is None:
        raise Malformed("an audit batch's signed_at needs a time zone")
    return at


def _read(doc: Any) -> Batch:
    try:
        if doc["version"] != BATCH_VERSION:
            raise Malformed(f"audit batch version {doc['version']!r} is not supported")
        envelopes = _envelopes(doc["envelopes"])
        party = doc["party"]
        if not isinstance(party, str):
            raise TypeError("party must be a string")
        records = [
            record_from_json({**item["record"], "hash": item["hash"]}) for item in doc["records"]
        ]
        checkpoints = [
            json.dumps(c, sort_keys=True, separators=(",", ":")).encode()
            for c in doc["checkpoints"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise Malformed(f"not an audit batch: {exc!r}") from None
    return Batch(party, records, checkpoints, envelopes)


def _envelopes(doc: Any) -> dict[str, bytes]:
    if not isinstance(doc, dict):
        raise TypeError("envelopes must be an object")
    try:
        return {str(key): base64.b64decode(value, validate=True) for key, value in doc.items()}
    except (binascii.Error, TypeError) as exc:
        raise ValueError(f"an archived envelope is not base64: {exc}") from None


def _check_records(batch: Batch) -> None:
    previous: AuditRecord | None = None
    for record in batch.records:
        if record.party != batch.party:
            raise AuditTampered(
                f"a batch of {batch.party} holds a record of {record.party}",
                seq=record.seq,
                party=batch.party,
            )
        if record_hash(record) != record.hash:
            raise AuditTampered(
                f"{batch.party} seq {record.seq}: its content does not match its hash",
                seq=record.seq,
                party=batch.party,
            )
        if previous is not None and (
            record.seq != previous.seq + 1 or record.prev_hash != previous.hash
        ):
            raise AuditTampered(
                f"{batch.party} seq {record.seq}: the batch's records are not consecutive links",
                seq=record.seq,
                party=batch.party,
            )
        previous = record
