"""The node's shipper against a bus that is down, then up (unit test with a fake bus)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from exchange._clock import FrozenClock
from exchange.audit.batch import open_batch
from exchange.audit.checkpoint import parse_checkpoint, verify_checkpoint
from exchange.audit.config import AuditSettings
from exchange.catalog import Catalog
from exchange.envelope.model import ServiceRef
from exchange.exceptions import BrokerUnavailable
from exchange.ledger.event import AuditEvent, EventName
from exchange.node.shipper import SHIPPED, Shipper
from exchange.node.store import SQLiteStore
from exchange.node.store.base import InboxRecord, OutboxRecord
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing import WireFormat, digest, seal
from exchange.testing import ThrowawayPKI, make_envelope
from exchange.transport.names import BusNames
from tests.bus.conftest import DATA

LEASE = timedelta(seconds=30)


@dataclass
class FakeBus:
    """Refuses while ``down``; otherwise records what was published."""

    down: bool = True
    published: list[tuple[str, str, bytes]] = field(default_factory=list)
    user_ids: list[str | None] = field(default_factory=list)
    url: str = "amqp://guest:guest@127.0.0.1:5672/"

    async def publish(
        self, exchange: str, key: str, body: bytes, user_id: str | None = None, **_: Any
    ) -> None:
        """Publish, or raise BrokerUnavailable while down."""
        if self.down:
            raise BrokerUnavailable("down")
        self.published.append((exchange, key, body))
        self.user_ids.append(user_id)


@dataclass
class Context:
    """The parts of a NodeContext the shipper uses."""

    party: str
    store: SQLiteStore
    bus: FakeBus
    names: BusNames
    credentials: Credentials
    clock: FrozenClock
    catalog: Catalog = field(
        default_factory=lambda: Catalog.load(DATA / "catalog.toml", DATA / "schemas")
    )

    def log(self) -> Any:
        """A logger."""
        return structlog.get_logger("test")


@pytest.fixture
async def ctx(tmp_path: Path, pki: ThrowawayPKI, clock: FrozenClock) -> AsyncIterator[Context]:
    """A context with an open store holding 25 audit records."""
    store = SQLiteStore(tmp_path / "p.db", "improvement", clock)
    await store.open()
    for i in range(25):
        async with store.transaction() as tx:
            tx.audit(AuditEvent(EventName.STATUS_SENT, message_id=f"m{i}"))
    yield Context(
        "improvement", store, FakeBus(), BusNames("t."), pki.credentials("improvement"), clock
    )
    await store.close()


def shipper(ctx: Context, owner: str = "p1") -> Shipper:
    """A shipper of 10 records per batch, a checkpoint every 10 records."""
    settings = AuditSettings(batch_size=10, checkpoint_every=10)
    return Shipper(ctx, settings, owner=owner, lease=LEASE)  # type: ignore[arg-type]


async def test_nothing_moves_while_the_broker_is_down(ctx: Context) -> None:
    """While publishing fails, the cursor stays and the records stay in the store."""
    assert await shipper(ctx).ship_once() == -1
    assert await ctx.store.get_meta(SHIPPED) is None
    assert len(await ctx.store.audit()) == 25


async def test_ships_in_batches_with_checkpoints(ctx: Context, trust: TrustStore) -> None:
    """Once up, batches go in seq order to the audit queue, with signed checkpoints."""
    ctx.bus.down = False
    ship = shipper(ctx)
    while await ship.ship_once() > 0:
        pass
    batches = [open_batch(body, trust).batch for _, key, body in ctx.bus.published]
    assert {key for _, key, _ in ctx.bus.published} == {"t.audit"}
    assert [r.seq for b in batches for r in b.records] == list(range(1, 26))
    checkpoints = [parse_checkpoint(c) for b in batches for c in b.checkpoints]
    assert [c.seq for c in checkpoints] == [10, 20]
    for checkpoint in checkpoints:
        verify_checkpoint(checkpoint, trust, "improvement")
    assert await ctx.store.get_meta(SHIPPED) == "25"
    assert set(ctx.bus.user_ids) == {None}  # guest is no party's broker user: no user_id


async def test_party_broker_user_is_set_as_user_id(ctx: Context, trust: TrustStore) -> None:
    """Logged in as the party's own broker user, the shipper has the broker vouch for it."""
    ctx.bus.down = False
    ctx.bus.url = "amqp://t.improvement:secret@127.0.0.1:5672/"
    assert await shipper(ctx).ship_once() == 10
    assert ctx.bus.user_ids == ["t.improvement"]


async def test_shutdown_checkpoints_the_head(ctx: Context) -> None:
    """On shutdown the head is checkpointed even when the broker is down, and kept."""
    await shipper(ctx).shutdown()
    stored = await ctx.store.checkpoints()
    assert [seq for seq, _ in stored] == [25]
    head = (await ctx.store.audit())[-1]
    assert json.loads(stored[0][1])["hash"] == head.hash


async def test_batches_carry_the_envelopes_their_records_name(
    tmp_path: Path, pki: ThrowawayPKI, clock: FrozenClock, trust: TrustStore
) -> None:
    """Sent and received envelopes of fully archived services travel with the batch, by
    digest; a digest-only service's, a pruned one's and an unknown one's do not."""
    store = SQLiteStore(tmp_path / "p.db", "improvement", clock)
    await store.open()
    try:
        sender = pki.credentials("single-center")
        mine = pki.credentials("improvement")
        wires = {
            "received": seal(make_envelope(clock), sender, WireFormat.JSON),
            "sent": seal(
                make_envelope(clock, sender="improvement", recipient="single-center"), mine
            ),
            "digest-only": seal(
                make_envelope(clock, service=ServiceRef(code="land-plot-info", version="1")),
                sender,
            ),
            "pruned": seal(make_envelope(clock), sender, WireFormat.JSON),
        }
        async with store.transaction() as tx:
            for name, wire in wires.items():
                envelope = make_envelope(clock, message_id=name)
                values: dict[str, Any] = {
                    "message_id": name,
                    "kind": "request",
                    "service": "land-plot-info" if name == "digest-only" else "tree-felling-permit",
                    "correlation_id": None,
                    "case_id": envelope.case_id,
                    "wire": b"" if name == "pruned" else wire,
                    "digest": digest(wire),
                    "expires_at": envelope.expires_at,
                }
                if name == "sent":
                    tx.add_outbox(
                        OutboxRecord(recipient="single-center", created_at=clock.now(), **values)
                    )
                else:
                    tx.add_inbox(
                        InboxRecord(sender="single-center", received_at=clock.now(), **values)
                    )
                event = EventName.CREATED if name == "sent" else EventName.RECEIVED
                tx.audit(
                    AuditEvent(
                        event, message_id=name, service=values["service"], digest=digest(wire)
                    )
                )
            tx.audit(AuditEvent(EventName.IGNORED, message_id="gone", digest="0" * 64))
        ctx = Context("improvement", store, FakeBus(down=False), BusNames("t."), mine, clock)
        assert await shipper(ctx).ship_once() == 5
        batch = open_batch(ctx.bus.published[0][2], trust).batch
        assert batch.envelopes == {
            digest(wires["received"]): wires["received"],
            digest(wires["sent"]): wires["sent"],
        }
    finally:
        await store.close()


async def test_one_process_of_a_party_ships_at_a_time(ctx: Context, trust: TrustStore) -> None:
    """Two processes' shippers on one store: the lease's holder ships every record once; the
    other ships nothing until the holder gives the lease up at shutdown (or it expires)."""
    ctx.bus.down = False
    first, second = shipper(ctx, "p1"), shipper(ctx, "p2")
    assert await first.holds_lease()
    assert not await second.holds_lease()
    await second.shutdown()  # not the holder: no checkpoint, nothing shipped
    assert ctx.bus.published == []
    while await first.ship_once() > 0:
        pass
    async with ctx.store.transaction() as tx:
        tx.audit(AuditEvent(EventName.STATUS_SENT, message_id="after"))
    await first.shutdown()  # checkpoints the head, ships it, gives the lease up
    assert await second.holds_lease()
    assert not await first.holds_lease()
    batches = [open_batch(body, trust).batch for _, _, body in ctx.bus.published]
    assert [r.seq for b in batches for r in b.records] == list(range(1, 27))
    ctx.clock.advance(LEASE * 0.75)
    assert await second.holds_lease()  # renewed: more than half its term was used
    ctx.clock.advance(LEASE * 0.5)
    assert not await first.holds_lease()  # past the first term, but renewed: still held


async def test_a_dead_holders_lease_is_taken_over(ctx: Context) -> None:
    """A holder that stops renewing (its process died) loses the lease once it expires."""
    dead, alive = shipper(ctx, "dead"), shipper(ctx, "alive")
    assert await dead.holds_lease()
    ctx.clock.advance(LEASE / 2)
    assert not await alive.holds_lease()
    ctx.clock.advance(LEASE / 2)
    assert await alive.holds_lease()
