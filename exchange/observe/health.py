"""Readiness: named checks of what a node or the collector needs before it can do its work.

``/health`` says only that the process answers; ``/ready`` runs these checks (broker
connected, store writable, trust store loaded with a current CRL, own certificate valid)
and names each that fails. A check returns ``None`` or raises ``NotReady``; one that
hangs fails after a time-out, so a stuck store never hangs the probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from cryptography import x509

from exchange._clock import Clock
from exchange.audit.central.base import CentralStore
from exchange.exceptions import ExchangeError, NotReady
from exchange.node.store.base import Store
from exchange.pki.trust import TrustStore
from exchange.transport.addresses import redacted
from exchange.transport.base import Transport

Check = Callable[[], Awaitable[None]]
"""A readiness check: returns when ready, raises ``NotReady`` (or any error) when not."""

CHECK_SECONDS = 5.0
READY_PROBE_KEY = "observe.ready-probe"
"""The meta key a node's store check writes (the time of the probe): a real write."""


class Readiness:
    """Runs named checks side by side and reports each one's problem."""

    def __init__(self, checks: Mapping[str, Check], timeout: float = CHECK_SECONDS) -> None:
        self.checks = dict(checks)
        self.timeout = timeout

    async def problems(self) -> dict[str, str]:
        """Each failing check's name and what is wrong; empty when all are ready."""
        names = list(self.checks)
        outcomes = await asyncio.gather(*(self._run(name) for name in names))
        return {name: problem for name, problem in zip(names, outcomes, strict=True) if problem}

    async def _run(self, name: str) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except ExchangeError as exc:
            return exc.message
        except Exception as exc:  # a probe reports any failure; it never raises
            return repr(exc)
        return None


def broker_check(bus: Transport) -> Check:
    """Ready while the bus is connected (it reconnects by itself in the background)."""

    async def check() -> None:
        if not bus.connected:
            raise NotReady(
                f"not connected to RabbitMQ at {redacted(bus.url)}; reconnecting",
                check="broker",
            )

    return check


def store_check(store: Store, clock: Clock) -> Check:
    """Ready while the party's store takes a write (a meta value, through its writer)."""

    async def check() -> None:
        await store.set_meta(READY_PROBE_KEY, clock.now().isoformat())

    return check


def central_store_check(store: CentralStore) -> Check:
    """Ready while the central audit store could start a write transaction."""
    return store.check_writable


def trust_check(trust: TrustStore, clock: Clock) -> Check:
    """Ready while the root CA is valid and a CRL signed by it covers now."""

    async def check() -> None:
        now = clock.now()
        root = trust.root
        if not root.not_valid_before_utc <= now <= root.not_valid_after_utc:
            raise NotReady("the root CA is not valid now", check="trust")
        next_update, problem = trust.crl_state()
        if problem is not None:
            raise NotReady(problem, check="trust")
        if next_update is None or now > next_update:
            raise NotReady(
                "the CRL is out of date; an admin must run `exchange certs crl`", check="trust"
            )

    return check


def certificate_check(certificate: x509.Certificate, clock: Clock) -> Check:
    """Ready while this identity's own signing certificate is valid (peers refuse it after)."""

    async def check() -> None:
        now = clock.now()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise NotReady(
                f"the signing certificate {certificate.serial_number:x} is valid only "
                f"{_day(certificate.not_valid_before_utc)} to "
                f"{_day(certificate.not_valid_after_utc)}; rotate it (`exchange certs rotate`)",
                check="certificate",
            )

    return check


def _day(at: datetime) -> str:
    return at.date().isoformat()
