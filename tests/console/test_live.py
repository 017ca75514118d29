"""The live hub: records reach the pages of their case only; shutdown ends every stream."""

from __future__ import annotations

from dataclasses import replace

from exchange.console.live import LiveHub
from exchange.ledger.event import AuditRecord

from .conftest import CASE, case_records


def _of_case(case_id: str) -> AuditRecord:
    record = case_records()[0]
    return replace(record, event=replace(record.event, case_id=case_id))


async def test_records_go_to_their_case_only() -> None:
    """A page of the case gets the record; a page of another case does not."""
    hub = LiveHub()
    with hub.subscribe(CASE) as mine, hub.subscribe("KZN-OTHER") as other:
        hub.publish(_of_case(CASE))
        assert (await mine.get()) == _of_case(CASE)
        assert other.empty()
    hub.publish(_of_case(CASE))  # nobody left: dropped, no error


async def test_a_slow_page_loses_its_oldest_records() -> None:
    """A full queue drops its oldest record instead of blocking the feed."""
    hub = LiveHub()
    with hub.subscribe(CASE) as queue:
        for seq in range(300):
            hub.publish(replace(_of_case(CASE), seq=seq))
        first = await queue.get()
        assert first is not None
        assert first.seq == 300 - queue.maxsize


async def test_shutdown_ends_every_stream() -> None:
    """``end_streams`` puts the end marker in every queue."""
    hub = LiveHub()
    with hub.subscribe(CASE) as one, hub.subscribe("KZN-OTHER") as two:
        hub.end_streams()
        assert await one.get() is None
        assert await two.get() is None
