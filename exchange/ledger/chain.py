"""The audit hash chain: canonical encoding, link hashes and the verifier (pure, no I/O).

Each record's hash is SHA-256 over the canonical JSON of its seq, time, party, event fields
and the previous record's hash, so editing, removing, inserting or reordering a record
breaks the chain at that point. The first record links to ``GENESIS_HASH``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from hashlib import sha256
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from exchange.exceptions import AuditTampered
from exchange.ledger.event import AuditEvent, AuditRecord

GENESIS_HASH = "0" * 64


def canonical_time(at: datetime) -> str:
    """The one text form of an audit time: UTC, ISO 8601, always with microseconds."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_JSON = _ENCODER.encode
"""The canonical JSON of any value: sorted keys, no whitespace, UTF-8 text, no NaN."""


def canonical_detail(detail: Mapping[str, Any]) -> str:
    """An event's detail as canonical JSON: the text the hash covers and the store keeps."""
    return _JSON(dict(detail)) if detail else "{}"


def _field(value: object) -> str:
    """One value as canonical JSON; the common cases (text, null) without the encoder."""
    if type(value) is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    return _JSON(value)


def _canonical_text(
    seq: int, at_json: str, party_json: str, event: AuditEvent, detail_json: str, prev_hash: str
) -> str:
    """The canonical document with its keys in sorted order, built from encoded pieces.

    The same text as ``json.dumps`` of the whole record with sorted keys and no whitespace
    (the known-answer test pins it), without building a dict and sorting it per record.
    """
    e = event
    return (
        f'{{"at":{at_json},"case_id":{_field(e.case_id)},'
        f'"correlation_id":{_field(e.correlation_id)},"detail":{detail_json},'
        f'"digest":{_field(e.digest)},"event":{encode_basestring(e.event)},"kind":{_field(e.kind)},'
        f'"message_id":{_field(e.message_id)},"party":{party_json},'
        f'"prev_hash":{_field(prev_hash)},'
        f'"seq":{seq if type(seq) is int else _JSON(seq)},"service":{_field(e.service)}}}'
    )


def canonical_bytes(seq: int, at: datetime, party: str, event: AuditEvent, prev_hash: str) -> bytes:
    """The exact bytes a record's hash covers (sorted keys, no whitespace, UTF-8)."""
    at_json = encode_basestring(canonical_time(at))
    detail = canonical_detail(event.detail)
    return _canonical_text(seq, at_json, _field(party), event, detail, prev_hash).encode("utf-8")


def chain_hash(seq: int, at: datetime, party: str, event: AuditEvent, prev_hash: str) -> str:
    """The hash of a new link: SHA-256 hex over its canonical bytes."""
    return sha256(canonical_bytes(seq, at, party, event, prev_hash)).hexdigest()


class Linker:
    """Chains many events of one party at one time, encoding what they share once.

    A store's commit appends every event of a group with one time: the party and the time
    are encoded once per group, and each event's detail once (hashed and stored as is).
    """

    __slots__ = ("_at_json", "_encode", "_markers", "_party_json", "at_text", "party")

    def __init__(self, at: datetime, party: str) -> None:
        self.party = party
        self.at_text = canonical_time(at)
        self._at_json = encode_basestring(self.at_text)
        self._party_json = _field(party)
        # The C encoder json.JSONEncoder.encode builds on every call, built once here: the
        # same options, so the same text (one Linker serves one thread).
        self._markers: dict[int, Any] = {}
        self._encode: Callable[[Any, int], Sequence[str]] | None = None
        if c_make_encoder is not None:
            e = _ENCODER
            self._encode = c_make_encoder(
                self._markers, e.default, encode_basestring, e.indent,
                e.key_separator, e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan,
            )  # fmt: skip

    def detail(self, detail: Mapping[str, Any]) -> str:
        """``canonical_detail(detail)``, faster."""
        if not detail:
            return "{}"
        if self._encode is None:
            return canonical_detail(detail)
        try:
            return "".join(self._encode(detail if type(detail) is dict else dict(detail), 0))
        except BaseException:
            self._markers.clear()  # what a failed encoding may leave behind
            raise

    def hash(self, seq: int, event: AuditEvent, detail_json: str, prev_hash: str) -> str:
        """The link hash of ``event`` at ``seq``; ``detail_json`` is its canonical detail."""
        text = _canonical_text(seq, self._at_json, self._party_json, event, detail_json, prev_hash)
        return sha256(text.encode("utf-8")).hexdigest()


def record_hash(record: AuditRecord) -> str:
    """Recompute a stored record's hash from its fields (compare it with ``record.hash``)."""
    return chain_hash(record.seq, record.at, record.party, record.event, record.prev_hash)


def link(seq: int, at: datetime, party: str, event: AuditEvent, prev_hash: str) -> AuditRecord:
    """Number, time and chain an event: the record a store appends."""
    return AuditRecord(
        seq=seq,
        at=at,
        party=party,
        event=event,
        prev_hash=prev_hash,
        hash=chain_hash(seq, at, party, event, prev_hash),
    )


def verify_chain(
    records: Sequence[AuditRecord], *, start_seq: int = 1, prev_hash: str = GENESIS_HASH
) -> None:
    """Check that ``records`` are consecutive links starting at ``start_seq`` after ``prev_hash``.

    Pass ``start_seq`` and ``prev_hash`` of a trusted earlier record (a checkpoint) to verify
    a later stretch of the chain.

    Raises:
        AuditTampered (audit-tampered): naming in ``data["seq"]`` the first seq at which the
            chain does not hold (a gap, a reordering, a broken link or a wrong hash).
    """
    expected_seq = start_seq
    expected_prev = prev_hash
    for record in records:
        if record.seq != expected_seq:
            raise AuditTampered(
                f"audit chain broken at seq {expected_seq}: found seq {record.seq} there "
                "(a record was removed, inserted or reordered)",
                seq=expected_seq,
                found_seq=record.seq,
            )
        if record.prev_hash != expected_prev:
            raise AuditTampered(
                f"audit chain broken at seq {record.seq}: it does not link to its predecessor",
                seq=record.seq,
            )
        if record_hash(record) != record.hash:
            raise AuditTampered(
                f"audit chain broken at seq {record.seq}: its content does not match its hash",
                seq=record.seq,
            )
        expected_seq += 1
        expected_prev = record.hash
