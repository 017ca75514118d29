"""The event vocabulary: typed names, refused when unknown on the way in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exchange.ledger import EventName, link
from exchange.ledger.chain import GENESIS_HASH
from exchange.ledger.codec import (
    AUDIT_COLUMNS,
    audit_record,
    audit_values,
    record_from_json,
    record_to_json,
    time_text,
)
from exchange.ledger.event import AuditEvent

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["receipt", "status", "response", "fault"])
def test_received_names_the_answer_kind(kind: str) -> None:
    """Each answer kind has its own received event."""
    assert EventName.received(kind).value == f"{kind}-received"


def test_received_refuses_a_kind_without_an_event() -> None:
    """A request does not 'arrive as an answer': there is no such event."""
    with pytest.raises(ValueError, match="request-received"):
        EventName.received("request")


def test_row_and_json_round_trip_keep_the_member() -> None:
    """A record read back carries the EventName member, not a bare string."""
    record = link(1, T0, "improvement", AuditEvent(EventName.HANDED_OVER, "m1"), GENESIS_HASH)
    row = audit_values(record, time_text)
    assert len(row) == len(AUDIT_COLUMNS)
    back = audit_record(row, datetime.fromisoformat)
    assert back == record
    assert back.event.event is EventName.HANDED_OVER
    assert record_from_json(record_to_json(record)).event.event is EventName.HANDED_OVER


def test_an_unknown_event_name_is_refused() -> None:
    """A stored or shipped record naming an event outside the vocabulary does not decode."""
    record = link(1, T0, "improvement", AuditEvent(EventName.CREATED, "m1"), GENESIS_HASH)
    doc = record_to_json(record) | {"event": "teleported"}
    with pytest.raises(ValueError, match="teleported"):
        record_from_json(doc)
    row = list(audit_values(record, time_text))
    row[AUDIT_COLUMNS.index("event")] = "teleported"
    with pytest.raises(ValueError, match="teleported"):
        audit_record(row, datetime.fromisoformat)
