"""Evidence bundles: a message's or a case's signed envelopes with the audit chain proof.

``export_bundle`` gathers, for a trace, every signed envelope the parties' message logs
hold (requests, receipts, statuses, answers), the audit records, and per party the chain
segment from the first of those records to the next signed checkpoint. Messages whose
content every holder pruned (retention, metadata-only parties) are listed as ``pruned``
with their digests: the audit records still prove what was sent, not what it said. ``check_bundle``
verifies it offline with only the trust store: each envelope's signature with its
certificate judged at the signing time the audit log recorded, each digest against the
records, each segment's links, and each checkpoint's signature and match.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exchange._clock import FrozenClock
from exchange.audit.central.base import CentralStore
from exchange.audit.checkpoint import parse_checkpoint, verify_checkpoint
from exchange.audit.trace import trace
from exchange.exceptions import AuditTampered, BundleInvalid, ExchangeError
from exchange.ledger.chain import canonical_time, verify_chain
from exchange.ledger.codec import record_from_json, record_to_json
from exchange.ledger.event import AuditRecord
from exchange.node.store.base import PRUNED, InboxRecord, OutboxRecord, Store
from exchange.pki.trust import TrustStore
from exchange.signing import digest as digest_of
from exchange.signing import unseal

BUNDLE_VERSION = 1
_MAX_WIRE = 64 * 1024 * 1024


async def export_bundle(
    central: CentralStore, ident: str, party_stores: Mapping[str, Store], now: datetime
) -> dict[str, Any]:
    """The evidence bundle of a message id or case id, as a JSON document.

    ``party_stores`` are the open stores of the parties whose message logs to read.

    Raises:
        BundleInvalid (bundle-invalid): the central store knows nothing of ``ident``.
    """
    timeline = await trace(central, ident, now)
    if not timeline.steps:
        raise BundleInvalid(f"the audit log knows no message or case {ident!r}")
    ids = sorted({r.event.message_id for r in timeline.steps if r.event.message_id})
    envelopes: dict[tuple[str, str], dict[str, Any]] = {}
    pruned: dict[str, dict[str, Any]] = {}
    for party, store in sorted(party_stores.items()):
        for message_id in ids:
            for copy in await _copies(store, message_id):
                if copy.wire == PRUNED:
                    entry = pruned.setdefault(
                        message_id,
                        {"message_id": message_id, "digest": copy.digest, "kind": copy.kind},
                    )
                    entry.setdefault("pruned_by", []).append(party)
                    continue
                wire = copy.wire
                digest = digest_of(wire)
                envelopes.setdefault(
                    (message_id, digest),
                    {
                        "message_id": message_id,
                        "held_by": party,
                        "digest": digest,
                        "wire": base64.b64encode(wire).decode(),
                    },
                )
    chains: dict[str, Any] = {}
    by_party: dict[str, list[AuditRecord]] = {}
    for record in timeline.steps:
        by_party.setdefault(record.party, []).append(record)
    for party, records in sorted(by_party.items()):
        chains[party] = await _chain_proof(central, party, records)
    kept = {message_id for message_id, _ in envelopes}
    return {
        "version": BUNDLE_VERSION,
        "query": ident,
        "created_at": canonical_time(now),
        "envelopes": list(envelopes.values()),
        # Content no party kept: named, so a missing envelope is explained, not suspicious.
        "pruned": [entry for mid, entry in sorted(pruned.items()) if mid not in kept],
        "chains": chains,
    }


async def _copies(store: Store, message_id: str) -> list[OutboxRecord | InboxRecord]:
    """The party's sent and received copies of a message (pruned ones included)."""
    found: list[OutboxRecord | InboxRecord] = []
    sent = await store.get_outbox(message_id)
    if sent is not None:
        found.append(sent)
    received = await store.get_inbox(message_id)
    if received is not None:
        found.append(received)
    return found


async def _chain_proof(
    central: CentralStore, party: str, records: list[AuditRecord]
) -> dict[str, Any]:
    low = min(r.seq for r in records)
    high = max(r.seq for r in records)
    checkpoint: bytes | None = None
    for body in await central.checkpoints(party):
        if parse_checkpoint(body).seq >= high:
            checkpoint = body
            break
    head = await central.head(party)
    end = parse_checkpoint(checkpoint).seq if checkpoint else (head[0] if head else high)
    segment = await central.records(party, since_seq=low - 1, limit=end - low + 1)
    return {
        "records": [record_to_json(r) for r in segment],
        "involved": sorted(r.seq for r in records),
        "checkpoint": json.loads(checkpoint) if checkpoint else None,
    }


@dataclass(slots=True)
class BundleReport:
    """What a bundle proved."""

    query: str
    envelopes: int = 0
    records: int = 0
    parties: list[str] = field(default_factory=list)
    unanchored: list[str] = field(default_factory=list)  # parties with no checkpoint yet
    pruned: list[str] = field(default_factory=list)  # messages whose content was not kept


def check_bundle(raw: bytes, trust: TrustStore) -> BundleReport:
    """Verify an evidence bundle offline with only the trust store.

    Raises:
        BundleInvalid (bundle-invalid): unreadable, or an envelope does not verify or is not
            in the records.
        AuditTampered (audit-tampered), CheckpointInvalid (checkpoint-invalid): a chain
            segment or its checkpoint does not hold (``data["seq"]`` names where).
    """
    try:
        doc = json.loads(raw)
        if doc.get("version") != BUNDLE_VERSION:
            raise BundleInvalid(f"bundle version {doc.get('version')!r} is not supported")
        query = str(doc["query"])
        chains = {
            party: ([record_from_json(r) for r in chain["records"]], chain.get("checkpoint"))
            for party, chain in doc["chains"].items()
        }
        envelopes = [
            (str(e["message_id"]), str(e["digest"]), base64.b64decode(e["wire"], validate=True))
            for e in doc["envelopes"]
        ]
        pruned = sorted(str(e["message_id"]) for e in doc.get("pruned", []))
    except BundleInvalid:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleInvalid(f"not an evidence bundle: {exc!r}") from None
    report = BundleReport(query, pruned=pruned)
    signed_at: dict[str, datetime] = {}
    digests: set[str] = set()
    for party, (records, checkpoint_doc) in sorted(chains.items()):
        _check_chain(party, records, checkpoint_doc, trust, report)
        for record in records:
            if record.event.digest:
                digests.add(record.event.digest)
            mid = record.event.message_id
            if mid and (mid not in signed_at or record.at < signed_at[mid]):
                signed_at[mid] = record.at
    for message_id, digest, wire in envelopes:
        _check_envelope(message_id, digest, wire, signed_at, digests, trust)
        report.envelopes += 1
    return report


def _check_chain(
    party: str,
    records: list[AuditRecord],
    checkpoint_doc: dict[str, Any] | None,
    trust: TrustStore,
    report: BundleReport,
) -> None:
    if not records:
        raise BundleInvalid(f"the bundle's chain of {party} is empty")
    if any(r.party != party for r in records):
        raise AuditTampered(f"the bundle's chain of {party} holds another party's record")
    verify_chain(records, start_seq=records[0].seq, prev_hash=records[0].prev_hash)
    report.records += len(records)
    report.parties.append(party)
    if checkpoint_doc is None:
        report.unanchored.append(party)
        return
    checkpoint = parse_checkpoint(checkpoint_doc)
    verify_checkpoint(checkpoint, trust, party)
    last = records[-1]
    if checkpoint.seq != last.seq or checkpoint.hash != last.hash:
        raise AuditTampered(
            f"{party} seq {last.seq}: the chain segment does not end at its signed checkpoint",
            seq=last.seq,
            party=party,
        )


def _check_envelope(
    message_id: str,
    digest: str,
    wire: bytes,
    signed_at: Mapping[str, datetime],
    digests: set[str],
    trust: TrustStore,
) -> None:
    actual = digest_of(wire)
    if actual != digest or actual not in digests:
        raise BundleInvalid(
            f"envelope {message_id}: its bytes are not the ones the audit log recorded",
            message_id=message_id,
        )
    at = signed_at.get(message_id)
    if at is None:
        raise BundleInvalid(f"envelope {message_id} has no audit record", message_id=message_id)
    try:
        verified = unseal(wire, trust, clock=FrozenClock(at), max_size=_MAX_WIRE)
    except ExchangeError as exc:
        raise BundleInvalid(
            f"envelope {message_id} does not verify at {canonical_time(at)}: {exc.message}",
            message_id=message_id,
            code=exc.code,
        ) from None
    if verified.envelope.message_id != message_id:
        raise BundleInvalid(f"envelope {message_id} carries another message id")
