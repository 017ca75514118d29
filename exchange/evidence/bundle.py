"""Evidence bundles: a message's or a case's signed envelopes with the audit chain proof.

``export_bundle`` gathers, for a trace, every signed envelope the parties' message logs
hold (requests, receipts, statuses, answers), the audit records, and per party the chain
segment from the first of those records to the next signed checkpoint. Messages whose
content every holder pruned (retention, metadata-only parties) are listed as ``pruned``
with their digests: the audit records still prove what was sent, not what it said. ``check_bundle``
verifies it offline with only the trust store: each envelope's signature with its
certificate judged at the signing time the audit log recorded, each digest against the
records, each segment's links, and each checkpoint's signature and match.

Attachments: the bundle lists each attachment of its envelopes (name, media type, size,
SHA-256, as signed); with a files folder the export copies the files there by hash, and
``check_bundle`` given that folder checks each file's size and SHA-256 against the entry
its verified envelope signed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from exchange._clock import FrozenClock
from exchange.attachments.store import AttachmentStore
from exchange.audit.central.base import CentralStore
from exchange.audit.checkpoint import parse_checkpoint, verify_checkpoint
from exchange.audit.trace import trace
from exchange.envelope.model import Envelope
from exchange.exceptions import AuditTampered, BundleInvalid, ExchangeError
from exchange.ledger.chain import canonical_time, verify_chain
from exchange.ledger.codec import record_from_json, record_to_json
from exchange.ledger.event import AuditRecord
from exchange.node.store.base import PRUNED, InboxRecord, OutboxRecord, Store
from exchange.pki.trust import TrustStore
from exchange.signing import digest as digest_of
from exchange.signing import unseal
from exchange.signing.stored import decode_stored

BUNDLE_VERSION = 1
_MAX_WIRE = 64 * 1024 * 1024


async def export_bundle(
    central: CentralStore,
    ident: str,
    party_stores: Mapping[str, Store],
    now: datetime,
    *,
    attachment_stores: Mapping[str, AttachmentStore] | None = None,
    files: Path | None = None,
) -> dict[str, Any]:
    """The evidence bundle of a message id or case id, as a JSON document.

    ``party_stores`` are the open stores of the parties whose message logs to read. With
    ``files`` (a folder), the attachments are copied there by SHA-256 from whichever of
    ``attachment_stores`` holds them; their hashes are listed either way.

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
    listed = _attachments(envelopes.values(), attachment_stores or {}, files)
    return {
        "version": BUNDLE_VERSION,
        "query": ident,
        "created_at": canonical_time(now),
        "envelopes": list(envelopes.values()),
        "attachments": listed,
        # Content no party kept: named, so a missing envelope is explained, not suspicious.
        "pruned": [entry for mid, entry in sorted(pruned.items()) if mid not in kept],
        "chains": chains,
    }


def _attachments(
    envelopes: Any, stores: Mapping[str, AttachmentStore], files: Path | None
) -> list[dict[str, Any]]:
    """The attachments the envelopes list; copied into ``files`` (by hash) when given."""
    listed: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in envelopes:
        envelope = decode_stored(base64.b64decode(entry["wire"]))
        for item in envelope.attachments:
            row: dict[str, Any] = {
                "message_id": envelope.message_id,
                "name": item.name,
                "media_type": item.media_type,
                "size": item.size,
                "sha256": item.sha256,
            }
            if files is not None:
                row["file"] = _copy_out(item.sha256, stores, files)
            listed.setdefault((envelope.message_id, item.sha256), row)
    return list(listed.values())


def _copy_out(sha256: str, stores: Mapping[str, AttachmentStore], files: Path) -> str | None:
    for _, store in sorted(stores.items()):
        if store.get(sha256) is not None:
            files.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(store.path(sha256), files / sha256)
            return sha256
    return None  # no party holds it any more (retention): its hash is the evidence left


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
    attachments: int = 0  # listed, each bound to a signed entry of its envelope
    attachment_files: int = 0  # files checked against their signed size and SHA-256


def check_bundle(raw: bytes, trust: TrustStore, files: Path | None = None) -> BundleReport:
    """Verify an evidence bundle offline with only the trust store (and its files folder).

    Raises:
        BundleInvalid (bundle-invalid): unreadable, or an envelope does not verify or is not
            in the records, or an attachment is not the one its envelope signed.
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
        attachments = [
            (str(a["message_id"]), str(a["sha256"]), int(a["size"]), a.get("file"))
            for a in doc.get("attachments", [])
        ]
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
    signed: dict[tuple[str, str], int] = {}
    for message_id, digest, wire in envelopes:
        envelope = _check_envelope(message_id, digest, wire, signed_at, digests, trust)
        signed.update(((message_id, a.sha256), a.size) for a in envelope.attachments)
        report.envelopes += 1
    for message_id, sha256, size, file in attachments:
        _check_attachment(message_id, sha256, size, file, signed, files, report)
    return report


def _check_attachment(
    message_id: str,
    sha256: str,
    size: int,
    file: object,
    signed: Mapping[tuple[str, str], int],
    files: Path | None,
    report: BundleReport,
) -> None:
    if signed.get((message_id, sha256)) != size:
        raise BundleInvalid(
            f"attachment {sha256} of {message_id} is not listed so in its signed envelope",
            message_id=message_id,
        )
    report.attachments += 1
    if files is None or not isinstance(file, str) or not file:
        return
    path = files / Path(file).name
    digest, actual = hashlib.sha256(), 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(1024 * 1024):
                digest.update(block)
                actual += len(block)
    except FileNotFoundError:
        raise BundleInvalid(f"attachment {sha256}: {path} is missing") from None
    if digest.hexdigest() != sha256 or actual != size:
        raise BundleInvalid(
            f"attachment {sha256} of {message_id}: {path} is not the signed file",
            message_id=message_id,
        )
    report.attachment_files += 1


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
) -> Envelope:
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
    return verified.envelope
