"""One party's connection to RabbitMQ: confirmed mandatory publishing and supervised consumers.

A supervisor task owns the connection. When it drops (broker restart, network) it reconnects
with back-off, applies the topology again and re-subscribes every consumer; it also
re-subscribes a consumer the broker cancelled. Given several addresses (the nodes of one
cluster), it tries the next one at once when a broker goes away, and backs off only after a
round in which none answered. Publishing while disconnected raises
``BrokerUnavailable`` at once, so callers keep the message in their outbox and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import DeliveryError
from aiormq.abc import DeliveredMessage

from exchange.exceptions import (
    BrokerRefused,
    BrokerUnavailable,
    PublishNotConfirmed,
    Unroutable,
)
from exchange.transport.addresses import broker_addresses, redacted
from exchange.transport.base import Callback
from exchange.transport.delivery import Acks, Delivery
from exchange.transport.names import BusNames
from exchange.transport.refusal import refusal
from exchange.transport.topology import apply_topology

log = structlog.get_logger("exchange.transport")


_WATCH_SECONDS = 1.0
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


@dataclass
class _Subscription:
    queue: str
    callback: Callback
    tag: str | None = None
    # A consumer with a prefetch of its own gets a channel of its own (large messages).
    prefetch: int | None = None
    channel: AbstractChannel | None = None
    acks: Acks | None = None


class Bus:
    """A supervised connection: publish with confirms, consume with manual acks."""

    def __init__(
        self,
        url: str,
        *,
        prefetch: int = 32,
        publish_timeout: float = 10.0,
    ) -> None:
        """``url``: one AMQP URL, or a cluster's nodes' separated by commas."""
        self.addresses = broker_addresses(url)
        self._address = 0  # index of the address connected to, or to try next
        self.prefetch = prefetch
        self.publish_timeout = publish_timeout
        self._topologies: list[tuple[BusNames, list[str]]] = []
        self._subscriptions: list[_Subscription] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._connection: AbstractConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._consume_channel: AbstractChannel | None = None
        self._publish_underlay: aiormq.abc.AbstractChannel | None = None
        self._acks: Acks | None = None  # of the consume channel
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        # The last attempt's login or vhost refusal per address: when every address refuses,
        # retrying cannot help and start() says so at once.
        self._refusals: dict[str, BrokerRefused] = {}
        self._attempted = asyncio.Event()  # set after each failed attempt to connect
        self._stopping = False
        self.connects = 0

    @property
    def url(self) -> str:
        """The address connected to (or to be tried next)."""
        return self.addresses[self._address]

    @property
    def connected(self) -> bool:
        """True while a connection with open channels is up."""
        return self._connected.is_set()

    async def start(self, timeout: float = 15.0) -> None:
        """Connect (and keep reconnecting in the background).

        Raises:
            BrokerRefused (broker-refused): every address refused the login or the vhost; at
                once, since retrying cannot help.
            BrokerUnavailable (broker-unavailable): no connection within ``timeout``.
        """
        self._stopping = False
        self._supervisor = asyncio.create_task(self._supervise(), name="bus-supervisor")
        try:
            async with asyncio.timeout(timeout):
                while not self._connected.is_set():
                    connected = asyncio.ensure_future(self._connected.wait())
                    attempted = asyncio.ensure_future(self._attempted.wait())
                    await asyncio.wait({connected, attempted}, return_when="FIRST_COMPLETED")
                    connected.cancel()
                    attempted.cancel()
                    self._attempted.clear()
                    refused = self._refused()
                    if refused is not None and not self._connected.is_set():
                        await self.stop()
                        raise refused
        except TimeoutError:
            await self.stop()
            raise BrokerUnavailable(
                f"cannot reach RabbitMQ at {redacted(' '.join(self.addresses))}: retried for "
                f"{timeout:.0f} s; start it (`rabbitmq-server -detached`) or set "
                "EXCHANGE_AMQP_URL"
            ) from None

    def _refused(self) -> BrokerRefused | None:
        if len(self._refusals) < len(self.addresses):
            return None
        return self._refusals[self.addresses[-1]]

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
            self._supervisor = None
        # The supervisor clears it only when a connection fails, not when it is cancelled.
        self._connected.clear()
        await self._close()

    def declare_on_connect(self, names: BusNames, parties: Iterable[str]) -> None:
        """Declare the bus topology for ``parties`` on every new connection, before consuming."""
        self._topologies.append((names, list(parties)))

    def subscribe(self, queue: str, callback: Callback, *, prefetch: int | None = None) -> None:
        """Consume ``queue`` with manual acks, now and after every reconnect.

        ``prefetch`` gives the consumer a channel of its own with that many unacked
        deliveries at most (for large messages, so a consumer's memory stays bounded).
        """
        self._subscriptions.append(_Subscription(queue, callback, prefetch=prefetch))
        if self._consume_channel is not None and not self._consume_channel.is_closed:
            # Keep a reference: the loop holds tasks only weakly.
            task = asyncio.get_running_loop().create_task(self._consume(self._subscriptions[-1]))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        content_type: str,
        message_type: str = "",
        user_id: str | None = None,
    ) -> None:
        """Publish persistent and mandatory; return once the broker confirmed it.

        ``user_id``, when given, must be the connection's broker user: the broker refuses
        the message otherwise, so a consumer may trust it names who published.

        Raises:
            BrokerUnavailable (broker-unavailable): not connected, or the connection broke.
            Unroutable (unroutable): no queue is bound for ``routing_key``.
            PublishNotConfirmed (publish-not-confirmed): nacked, or no confirm in time.
        """
        channel = self._publish_underlay
        if not self._connected.is_set() or channel is None or channel.is_closed:
            raise BrokerUnavailable("not connected to RabbitMQ; the message stays in the outbox")
        # Straight to aiormq: aio-pika's Message and Exchange wrappers cost more per publish
        # than the frames themselves. aiormq gives every publish a fresh random AMQP
        # message_id, by which it matches returns (DESIGN.md pitfalls).
        properties = aiormq.spec.Basic.Properties(
            delivery_mode=_PERSISTENT,
            content_type=content_type,
            message_type=message_type,
            user_id=user_id,
        )
        try:
            await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                timeout=self.publish_timeout,
            )
        except DeliveryError as exc:
            if exc.frame is not None and isinstance(exc.frame, aiormq.spec.Basic.Return):
                raise Unroutable(
                    f"no queue for {routing_key!r} on {exchange}: unknown recipient?",
                    routing_key=routing_key,
                ) from None
            raise PublishNotConfirmed(f"the broker refused the message: {exc}") from None
        except TimeoutError:
            raise PublishNotConfirmed(
                f"no confirm within {self.publish_timeout:.0f} s; the message stays in the outbox"
            ) from None
        except Exception as exc:  # a connection lost mid-publish surfaces in many types
            raise BrokerUnavailable(
                f"connection to RabbitMQ lost while publishing: {exc!r}"
            ) from None

    async def queue_depth(self, queue: str) -> int:
        """How many messages wait in ``queue``, ready for a consumer (unacked ones not counted).

        A passive declare on a short channel of its own: a missing queue or a refused look
        closes only that channel, never the ones that publish and consume.

        Raises:
            BrokerUnavailable (broker-unavailable): not connected, or the broker would not tell.
        """
        connection = self._connection
        if not self._connected.is_set() or connection is None or connection.is_closed:
            raise BrokerUnavailable(f"not connected to RabbitMQ; cannot look at {queue}")
        try:
            async with asyncio.timeout(self.publish_timeout):
                channel = await connection.channel(publisher_confirms=False)
                try:
                    declared = await channel.declare_queue(queue, passive=True)
                finally:
                    if not channel.is_closed:
                        await channel.close()
        except Exception as exc:  # a 404 or 403 closes the channel: many exception types
            raise BrokerUnavailable(f"cannot look at queue {queue}: {exc!r}") from None
        return int(declared.declaration_result.message_count or 0)

    # --- supervision ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._open()
                failures = 0
                self._refusals.clear()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any broker trouble means: reconnect
                refused = refusal(exc, self.url)
                if refused is None:
                    self._refusals.pop(self.url, None)
                else:
                    self._refusals[self.url] = refused
                self._attempted.set()
                log.warning(
                    "bus.disconnected",
                    url=redacted(self.url),
                    error=refused.message if refused else str(exc) or repr(exc),
                )
            self._connected.clear()
            await self._close()
            if self._stopping:
                break
            self._address = (self._address + 1) % len(self.addresses)
            failures += 1
            if failures % len(self.addresses) == 0:  # a whole round without a broker
                rounds = failures // len(self.addresses)
                await asyncio.sleep(_BACKOFF[min(rounds - 1, len(_BACKOFF) - 1)])

    async def _open(self) -> None:
        self._connection = await aio_pika.connect(self.url, timeout=5)
        self._publish_channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._consume_channel = await self._connection.channel(publisher_confirms=False)
        await self._consume_channel.set_qos(prefetch_count=self.prefetch)
        self._acks = Acks(await self._consume_channel.get_underlay_channel())
        self._publish_underlay = await self._publish_channel.get_underlay_channel()
        for names, parties in self._topologies:
            await apply_topology(self._publish_channel, names, parties)
        for subscription in self._subscriptions:
            await self._consume(subscription)
        self.connects += 1
        self._connected.set()
        log.info("bus.connected", url=redacted(self.url), connects=self.connects)

    async def _consume(self, subscription: _Subscription) -> None:
        assert self._consume_channel is not None
        assert self._acks is not None
        assert self._connection is not None
        channel, acks = self._consume_channel, self._acks
        if subscription.prefetch is not None:
            if subscription.channel is None or subscription.channel.is_closed:
                subscription.channel = await self._connection.channel(publisher_confirms=False)
                await subscription.channel.set_qos(prefetch_count=subscription.prefetch)
                subscription.acks = Acks(await subscription.channel.get_underlay_channel())
            assert subscription.acks is not None
            channel, acks = subscription.channel, subscription.acks
        await channel.get_queue(subscription.queue, ensure=True)  # it must exist
        callback = subscription.callback

        async def deliver(message: DeliveredMessage) -> None:
            await callback(Delivery(message, acks))

        # aiormq runs ``deliver`` as one task per message (see Delivery for why not aio-pika).
        consume_ok = await acks.channel.basic_consume(subscription.queue, deliver, no_ack=False)
        subscription.tag = consume_ok.consumer_tag

    async def _watch(self) -> None:
        # Robust connections are known to lose consumers after an ungraceful broker loss or
        # a server-sent basic.cancel, so watch both ourselves.
        assert self._connection is not None
        assert self._consume_channel is not None
        while not self._stopping:
            await asyncio.sleep(_WATCH_SECONDS)
            if self._connection.is_closed or self._consume_channel.is_closed:
                raise ConnectionError("connection or channel closed")
            if self._publish_channel is None or self._publish_channel.is_closed:
                raise ConnectionError("publish channel closed")
            for subscription in self._subscriptions:
                channel = subscription.channel or self._consume_channel
                if channel.is_closed:
                    raise ConnectionError("consume channel closed")
                underlay = await channel.get_underlay_channel()
                consumers = underlay.consumers  # type: ignore[attr-defined]
                if subscription.tag not in consumers:
                    log.warning("bus.consumer_lost", queue=subscription.queue)
                    await self._consume(subscription)

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        self._publish_channel = self._consume_channel = None
        self._publish_underlay = None
        self._acks = None
        for subscription in self._subscriptions:
            subscription.channel = subscription.acks = None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
