"""The audit hash chain: its canonical encoding, and tampering each found at the right seq."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest

from exchange.exceptions import AuditTampered
from exchange.ledger import (
    GENESIS_HASH,
    canonical_bytes,
    chain_hash,
    link,
    record_hash,
    verify_chain,
)
from exchange.ledger.chain import Linker, canonical_time
from exchange.ledger.event import AuditEvent, AuditRecord, EventName

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PARTY = "improvement"


def make_chain(n: int = 10) -> list[AuditRecord]:
    """A valid chain of ``n`` records, one minute apart."""
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        event = AuditEvent(EventName.STATUS_SENT, message_id=f"m{seq}", detail={"step": seq})
        records.append(link(seq, T0 + timedelta(minutes=seq), PARTY, event, prev))
        prev = records[-1].hash
    return records


def renumber(records: list[AuditRecord], start: int = 1) -> list[AuditRecord]:
    """The same records with consecutive seq labels (hashes untouched), as a clumsy forger would."""
    return [replace(r, seq=start + i) for i, r in enumerate(records)]


def tampered_at(records: list[AuditRecord]) -> int:
    """The seq verify_chain names, failing the test if it finds nothing."""
    with pytest.raises(AuditTampered) as info:
        verify_chain(records)
    seq = info.value.data["seq"]
    assert isinstance(seq, int)
    return seq


def test_known_answer() -> None:
    """The hash is SHA-256 over sorted-key compact JSON with UTC microsecond times."""
    event = AuditEvent(EventName.RECEIVED, message_id="m1", detail={"b": 1, "a": "ё"})
    text = (
        '{"at":"2026-01-15T09:00:00.000000+00:00","case_id":null,"correlation_id":null,'
        '"detail":{"a":"ё","b":1},"digest":null,"event":"received","kind":null,'
        '"message_id":"m1","party":"improvement","prev_hash":"' + GENESIS_HASH + '",'
        '"seq":1,"service":null}'
    )
    assert canonical_bytes(1, T0, PARTY, event, GENESIS_HASH) == text.encode()
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert chain_hash(1, T0, PARTY, event, GENESIS_HASH) == expected
    assert link(1, T0, PARTY, event, GENESIS_HASH).hash == expected


class _Kind(StrEnum):
    REQUEST = "request"


class _ReadOnly(Mapping[str, Any]):
    """A detail that is a Mapping but not a dict."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


AWKWARD = [
    AuditEvent(EventName.CONFIRMED),
    AuditEvent(
        EventName.RECEIVED, message_id='q"uo\te', case_id="KZN-\u0001\n\t\x7f", kind=_Kind.REQUEST
    ),
    AuditEvent(
        EventName.STATUS_SENT, correlation_id="ё ü 中文 😀 \u2028", service="tree-felling-permit"
    ),
    AuditEvent(
        EventName.REJECTED,
        digest="f" * 64,
        detail={"z": [1, 2.5, -0.0, 1e300, True, None], "a": {"y": "</script>", "b": {}}},
    ),
    AuditEvent(EventName.RECEIPT_RECEIVED, detail=_ReadOnly(b=1, a="ё")),
    AuditEvent(EventName.RECEIPT_RECEIVED, detail={"": "", "a b": [], "\u00e9": "\ud7ff"}),
]


def _reference(seq: int, at: datetime, party: str, event: AuditEvent, prev: str) -> bytes:
    """The canonical bytes as first specified: json.dumps of the whole record."""
    doc = {
        "seq": seq,
        "at": canonical_time(at),
        "party": party,
        "event": event.event,
        "message_id": event.message_id,
        "correlation_id": event.correlation_id,
        "case_id": event.case_id,
        "service": event.service,
        "kind": event.kind,
        "digest": event.digest,
        "detail": dict(event.detail),
        "prev_hash": prev,
    }
    text = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


@pytest.mark.parametrize("event", AWKWARD, ids=range(len(AWKWARD)))
def test_fast_encoding_matches_json_dumps(event: AuditEvent) -> None:
    """The piecewise encoding (and a store's Linker) yields json.dumps's bytes and hash."""
    at = T0 + timedelta(microseconds=7)
    expected = _reference(12345, at, "urban-permits", event, "a" * 64)
    assert canonical_bytes(12345, at, "urban-permits", event, "a" * 64) == expected
    linker = Linker(at, "urban-permits")
    detail = linker.detail(event.detail)
    assert json.loads(detail) == json.loads(json.dumps(dict(event.detail)))
    assert linker.hash(12345, event, detail, "a" * 64) == hashlib.sha256(expected).hexdigest()


def test_linker_refuses_what_json_refuses() -> None:
    """NaN and circular details raise ValueError, and the Linker stays usable afterwards."""
    linker = Linker(T0, PARTY)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    for bad in ({"x": float("nan")}, loop, {"deep": [loop]}):
        with pytest.raises(ValueError, match=r"not JSON compliant|Circular"):
            linker.detail(bad)
    assert linker.detail({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'


def test_time_zone_does_not_change_the_hash() -> None:
    """The same instant in another zone hashes the same; a naive time is refused."""
    event = AuditEvent(EventName.CONFIRMED)
    moscow = T0.astimezone(timezone(timedelta(hours=3)))
    assert chain_hash(1, moscow, PARTY, event, GENESIS_HASH) == chain_hash(
        1, T0, PARTY, event, GENESIS_HASH
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        chain_hash(1, T0.replace(tzinfo=None), PARTY, event, GENESIS_HASH)


def test_valid_chain_verifies() -> None:
    """An untouched chain, an empty one and every record's own hash all check out."""
    records = make_chain()
    verify_chain(records)
    verify_chain([])
    assert all(record_hash(r) == r.hash for r in records)


def test_edited_record() -> None:
    """Editing a record's content is found at that record."""
    records = make_chain()
    event = replace(records[4].event, detail={"step": 500})
    records[4] = replace(records[4], event=event)
    assert tampered_at(records) == 5


def test_edited_record_with_fresh_hash() -> None:
    """Editing a record and recomputing its hash is found at the next record."""
    records = make_chain()
    edited = replace(records[4], party="architecture")
    records[4] = replace(edited, hash=record_hash(edited))
    assert tampered_at(records) == 6


def test_edited_time() -> None:
    """Moving a record's time is found at that record."""
    records = make_chain()
    records[6] = replace(records[6], at=records[6].at + timedelta(seconds=1))
    assert tampered_at(records) == 7


def test_deleted_record() -> None:
    """Deleting a record leaves a gap at its seq."""
    records = make_chain()
    del records[4]
    assert tampered_at(records) == 5


def test_deleted_record_renumbered() -> None:
    """Deleting a record and renumbering the rest is found where it was."""
    records = make_chain()
    del records[4]
    assert tampered_at(renumber(records)) == 5


def test_inserted_record() -> None:
    """A well-formed record inserted after seq 4 (later ones renumbered) is found at seq 6."""
    records = make_chain()
    forged = link(5, records[3].at, PARTY, AuditEvent(EventName.RESPONDED), records[3].hash)
    assert tampered_at(renumber([*records[:4], forged, *records[4:]])) == 6


def test_inserted_duplicate_seq() -> None:
    """A record inserted with an existing seq is found at the seq after it."""
    records = make_chain()
    forged = link(5, records[3].at, PARTY, AuditEvent(EventName.RESPONDED), records[3].hash)
    assert tampered_at([*records[:4], forged, *records[4:]]) == 6


def test_reordered_records() -> None:
    """Swapping two records is found at the first of them."""
    records = make_chain()
    records[3], records[4] = records[4], records[3]
    assert tampered_at(records) == 4


def test_reordered_records_renumbered() -> None:
    """Swapping two records and their seq labels is found at the first of them."""
    records = make_chain()
    records[3], records[4] = records[4], records[3]
    assert tampered_at(renumber(records)) == 4


def test_truncated_middle() -> None:
    """Cutting seq 4 to 7 out is found at seq 4."""
    records = make_chain()
    assert tampered_at([*records[:3], *records[7:]]) == 4


def test_truncated_head() -> None:
    """A chain missing its start is refused, but verifies from a trusted earlier record."""
    records = make_chain()
    assert tampered_at(records[3:]) == 1
    verify_chain(records[3:], start_seq=4, prev_hash=records[2].hash)
    with pytest.raises(AuditTampered) as info:
        verify_chain(records[3:], start_seq=4, prev_hash=records[1].hash)
    assert info.value.data["seq"] == 4


def test_forged_genesis() -> None:
    """A first record that does not link to the genesis hash is found at seq 1."""
    records = make_chain()
    forged = replace(records[0], prev_hash="1" * 64)
    records[0] = replace(forged, hash=record_hash(forged))
    assert tampered_at(records) == 1
