"""Broker addresses: ``EXCHANGE_AMQP_URL`` may list several nodes of one RabbitMQ cluster.

A node connects to the first address that answers and, when that broker goes away, moves on
to the next one instead of waiting for the lost one to come back (its queues' quorum leaders
move to the surviving brokers within seconds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection

from exchange.exceptions import BrokerRefused
from exchange.transport.refusal import refusal

CONNECT_TIMEOUT = 5.0
AMQP_SCHEMES = ("amqp", "amqps")


def broker_addresses(text: str) -> tuple[str, ...]:
    """The AMQP URLs in ``text``, separated by commas or whitespace, in the order given.

    Raises:
        ValueError: no address, or one that is not an ``amqp://``/``amqps://`` URL with a host.
    """
    addresses = tuple(part for part in text.replace(",", " ").split() if part)
    if not addresses:
        raise ValueError("no broker address: give amqp://user:password@host:5672/vhost")
    for address in addresses:
        parts = urlsplit(address)
        if parts.scheme not in AMQP_SCHEMES or not parts.hostname:
            raise ValueError(
                f"{redacted(address)} is not an AMQP URL: write amqp://user:password@host:5672/"
                " (or amqps:// for TLS); separate several cluster nodes with commas"
            )
    return addresses


async def connect_any(
    addresses: Sequence[str],
    connect: Callable[..., Awaitable[AbstractConnection]] = aio_pika.connect,
) -> AbstractConnection:
    """A connection (made by ``connect``) to the first of ``addresses`` that accepts one.

    Raises:
        BrokerRefused (broker-refused): every address refused the login or the vhost.
        Exception: otherwise what the last unreachable address's attempt raised.
    """
    unreachable: Exception | None = None
    refused: BrokerRefused | None = None
    for address in addresses:
        try:
            return await connect(address, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # a refused, unreachable or timed-out node: try the next
            this = refusal(exc, address)
            if this is None:
                unreachable = exc
            else:
                refused = this
    if unreachable is not None:
        raise unreachable
    assert refused is not None, "connect_any needs at least one address"
    raise refused


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
