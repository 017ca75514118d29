"""Declaring the bus on the broker; idempotent, so every node applies it at start."""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel
from pamqp.common import FieldTable

from exchange.transport.names import BusNames

# Generous: a SIGKILLed consumer raises the delivery count of what it held (DESIGN.md).
DELIVERY_LIMIT = 20


def _quorum(dead_letter_exchange: str | None = None, routing_key: str = "") -> FieldTable:
    arguments: FieldTable = {"x-queue-type": "quorum"}
    if dead_letter_exchange is not None:
        arguments.update(
            {
                "x-dead-letter-exchange": dead_letter_exchange,
                "x-dead-letter-routing-key": routing_key,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
                "x-delivery-limit": DELIVERY_LIMIT,
            }
        )
    return arguments


async def apply_topology(channel: AbstractChannel, names: BusNames, parties: Iterable[str]) -> None:
    """Declare exchanges (the bus, dead letters, the audit feed), each party's inbox, dead
    letters, audit acknowledgments, admin commands and attachment chunks, the quarantine,
    the audit queue and the audit quarantine.

    Queues the bus serves by name (not by party id) are bound with their own name as key.

    No alternate exchange on the bus: it would swallow the returns that tell a sender its
    recipient does not exist (DESIGN.md, On RabbitMQ).
    """
    bus = await channel.declare_exchange(names.bus, aio_pika.ExchangeType.DIRECT, durable=True)
    dlx = await channel.declare_exchange(
        names.dead_letter, aio_pika.ExchangeType.DIRECT, durable=True
    )
    await channel.declare_exchange(names.audit_feed, aio_pika.ExchangeType.FANOUT, durable=True)
    for name in (names.quarantine, names.audit, names.audit_quarantine):
        queue = await channel.declare_queue(name, durable=True, arguments=_quorum())
        await queue.bind(bus, routing_key=name)
    for party in parties:
        dlq = await channel.declare_queue(
            names.dead_letters(party), durable=True, arguments=_quorum()
        )
        await dlq.bind(dlx, routing_key=party)
        inbox = await channel.declare_queue(
            names.inbox(party), durable=True, arguments=_quorum(names.dead_letter, party)
        )
        await inbox.bind(bus, routing_key=party)
        acks = await channel.declare_queue(
            names.audit_acks(party), durable=True, arguments=_quorum()
        )
        await acks.bind(bus, routing_key=names.audit_acks(party))
        admin = await channel.declare_queue(names.admin(party), durable=True, arguments=_quorum())
        await admin.bind(bus, routing_key=names.admin(party))
        chunks = await channel.declare_queue(
            names.attachments(party), durable=True, arguments=_quorum()
        )
        await chunks.bind(bus, routing_key=names.attachments(party))


async def remove_topology(
    channel: AbstractChannel, names: BusNames, parties: Iterable[str]
) -> None:
    """Delete what ``apply_topology`` declared under ``names`` (a demo run's, a test's)."""
    queues = [names.quarantine, names.audit, names.audit_quarantine]
    for party in parties:
        queues += [
            names.inbox(party),
            names.dead_letters(party),
            names.audit_acks(party),
            names.admin(party),
            names.attachments(party),
        ]
    for queue in queues:
        await channel.queue_delete(queue)
    for exchange in (names.bus, names.dead_letter, names.audit_feed):
        await channel.exchange_delete(exchange)
