"""Broker addresses: ``EXCHANGE_AMQP_URL`` may list several nodes of one RabbitMQ cluster.

A node connects to the first address that answers and, when that broker goes away, moves on
to the next one instead of waiting for the lost one to come back (its queues' quorum leaders
move to the surviving brokers within seconds).
"""

from __future__ import annotations

from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractConnection

CONNECT_TIMEOUT = 5.0


def broker_addresses(text: str) -> tuple[str, ...]:
    """The AMQP URLs in ``text``, separated by commas or whitespace, in the order given.

    Raises:
        ValueError: no address, or one that is not an ``amqp://``/``amqps://`` URL.
    """
    addresses = tuple(part for part in text.replace(",", " ").split() if part)
    if not addresses:
        raise ValueError("no broker address: give amqp://user:password@host:5672/vhost")
    for address in addresses:
        scheme, sep, rest = address.partition("://")
        if not sep or scheme.lower() not in ("amqp", "amqps") or not rest:
            raise ValueError(
                f"{redacted(address)} is not an AMQP URL: write amqp://user:password@host:5672/"
                " (or amqps:// for TLS); separate several cluster nodes with commas"
            )
    return addresses


async def connect_any(addresses: Sequence[str]) -> AbstractConnection:
    """A connection to the first of ``addresses`` that accepts one.

    Raises:
        Exception: what the last address's connection attempt raised (all were tried).
    """
    last: Exception | None = None
    for address in addresses:
        try:
            return await aio_pika.connect(address, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # a refused, unreachable or timed-out node: try the next
            last = exc
    assert last is not None, "connect_any needs at least one address"
    raise last


def redacted(url: str) -> str:
    """``url`` (or each URL of a list) with its password replaced by ``***``, for messages."""
    parts = url.replace(",", " ").split()
    if len(parts) > 1:
        return ", ".join(map(redacted, parts))
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"
    return url
