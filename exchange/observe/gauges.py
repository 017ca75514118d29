"""Gauges nodes and the collector share: broker queue depths and certificate lifetimes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge

from exchange.exceptions import ExchangeError
from exchange.pki.trust import TrustStore
from exchange.transport.base import Transport


def refresh_errors(registry: CollectorRegistry) -> Counter:
    """Scrapes in which a source of gauges (store, broker) could not be read."""
    return Counter(
        "exchange_metrics_refresh_errors",
        "Scrapes in which a source of gauges (store, broker) could not be read.",
        ("party", "source"),
        registry=registry,
    )


class QueueGauges:
    """Messages ready in the broker queues an identity watches (inbox, dead letters ...)."""

    def __init__(self, registry: CollectorRegistry, party: str) -> None:
        self.party = party
        self.depth = Gauge(
            "exchange_queue_messages",
            "Messages ready in a broker queue (not yet delivered to a consumer).",
            ("party", "queue"),
            registry=registry,
        )

    async def refresh(self, bus: Transport, queues: Mapping[str, str]) -> bool:
        """Ask the broker for each queue (label -> queue name); False if any could not be read.

        A queue that could not be read shows NaN, never a stale number.
        """
        complete = True
        for label, queue in queues.items():
            try:
                depth: float = await bus.queue_depth(queue)
            except ExchangeError:
                depth, complete = math.nan, False
            self.depth.labels(self.party, label).set(depth)
        return complete


class IdentityGauges:
    """Seconds until an identity's signing certificate, the root CA and the CRL lapse."""

    def __init__(self, registry: CollectorRegistry, party: str) -> None:
        self.party = party
        self.certificate = Gauge(
            "exchange_certificate_expiry_seconds",
            "Seconds until a certificate expires (negative: expired): this identity's "
            "signing certificate, and the root CA.",
            ("party", "certificate"),
            registry=registry,
        )
        self.crl = Gauge(
            "exchange_crl_next_update_seconds",
            "Seconds until the CRL's next update (negative: out of date; NaN: no usable CRL).",
            ("party",),
            registry=registry,
        )

    def refresh(self, signing: x509.Certificate | None, trust: TrustStore, now: datetime) -> None:
        """Set the three lifetimes as of ``now``."""
        if signing is not None:
            self.certificate.labels(self.party, "signing").set(
                (signing.not_valid_after_utc - now).total_seconds()
            )
        self.certificate.labels(self.party, "root").set(
            (trust.root.not_valid_after_utc - now).total_seconds()
        )
        next_update, problem = trust.crl_state()
        seconds = math.nan
        if next_update is not None and problem is None:
            seconds = (next_update - now).total_seconds()
        self.crl.labels(self.party).set(seconds)
