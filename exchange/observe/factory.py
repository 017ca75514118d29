"""Wiring metrics and probes beside a node or the collector: what the composition roots call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from exchange.audit.collector import Collector
from exchange.config import Settings
from exchange.node.node import Node
from exchange.observe.central import CollectorMetrics
from exchange.observe.health import (
    Readiness,
    broker_check,
    central_store_check,
    certificate_check,
    store_check,
    trust_check,
)
from exchange.observe.metrics import NodeMetrics
from exchange.observe.server import ProbeServer


class _Metrics(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Observer:
    """A node's or the collector's metrics and probe server, started and stopped together."""

    def __init__(self, metrics: _Metrics, server: ProbeServer) -> None:
        self.metrics = metrics
        self.server = server

    @property
    def port(self) -> int:
        """The port the probe server listens on (once started)."""
        return self.server.port

    async def start(self) -> None:
        """Start the metrics, then listen.

        Raises:
            ProbeUnavailable (probe-unavailable): the port is taken.
        """
        await self.metrics.start()
        try:
            await self.server.start()
        except BaseException:
            await self.metrics.stop()
            raise

    async def stop(self) -> None:
        """Stop listening, then stop the metrics."""
        await self.server.stop()
        await self.metrics.stop()


def observe_node(node: Node, host: str = "127.0.0.1", port: int = 0) -> Observer:
    """Metrics and probes of ``node``: attach with ``node.attach`` (or ``build_node``)."""
    ctx = node.ctx
    metrics = NodeMetrics(node)
    readiness = Readiness(
        {
            "broker": broker_check(ctx.bus),
            "store": store_check(ctx.store, ctx.clock),
            "trust": trust_check(ctx.trust, ctx.clock),
            "certificate": certificate_check(ctx.credentials.certificate, ctx.clock),
        }
    )
    server = ProbeServer(
        metrics.registry, metrics.refresh, readiness, name=node.party, host=host, port=port
    )
    return Observer(metrics, server)


def observe_collector(
    collector: Collector, party: str, host: str = "127.0.0.1", port: int = 0
) -> Observer:
    """Metrics and probes of the audit collector (``party``: its catalog identity)."""
    metrics = CollectorMetrics(collector, party)
    checks = {
        "broker": broker_check(collector.bus),
        "store": central_store_check(collector.store),
        "trust": trust_check(collector.trust, collector.clock),
    }
    if collector.credentials is not None:
        checks["certificate"] = certificate_check(
            collector.credentials.certificate, collector.clock
        )
    server = ProbeServer(
        metrics.registry, metrics.refresh, Readiness(checks), name=party, host=host, port=port
    )
    return Observer(metrics, server)


def node_companions(settings: Settings) -> list[Callable[[Node], Observer]]:
    """What ``build_node(companions=...)`` attaches for a long-running node: its observer
    when ``EXCHANGE_METRICS_PORT`` is set, else nothing."""
    port = settings.metrics_port
    if port is None:
        return []
    return [lambda node: observe_node(node, settings.metrics_host, port)]
