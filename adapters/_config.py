"""What every department's ``config.py`` declares: its node's defaults and its dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from exchange.node import NodeConfig
from exchange.signing import WireFormat


@dataclass(frozen=True)
class AdapterConfig:
    """One department's adapter: who it is, what it provides and asks, how its node runs.

    The node's own settings (certificates, broker, store) come from ``EXCHANGE_*`` variables
    as for any node; this is what is particular to the department. The catalog names the
    package it lives in; ``exchange node run`` builds the node with :class:`NodeConfig`
    defaults; the demo and the tests build it with :meth:`node_config`.
    """

    party: str
    """The party id on the bus and in the certificate."""
    provides: tuple[str, ...]
    """Services this department answers; ``system.register`` installs a handler for each."""
    asks: tuple[str, ...] = ()
    """Services of other departments its handlers call before they decide."""
    wire_format: WireFormat = WireFormat.XML
    """Format of the requests it sends (answers always use the request's format)."""
    query_timeout: float = 30.0
    """Seconds a handler holds on for another department's answer before it parks the
    request (``Waiting``: not a failure; the node runs it again when the answer comes, and
    that run finds the answer; it does not ask again)."""
    handler_concurrency: int = 16
    """Requests this department works on at once."""
    receipt_timeouts: tuple[float, ...] = (5.0, 15.0, 60.0, 300.0)
    """Seconds to wait for a receipt before resending a request, per attempt."""
    handler_retry_delays: tuple[float, ...] = (1.0, 10.0, 60.0)
    """Back-off between handler runs that failed; past the last one, ``processing-failed``."""
    request_ttl: timedelta = field(default=timedelta(days=3))
    """A request this department sent that has no receipt by then is final (undelivered)."""

    def node_config(self, **overrides: Any) -> NodeConfig:
        """The node's tunables for this department (``overrides`` win, e.g. in tests)."""
        config = NodeConfig(
            wire_format=self.wire_format,
            handler_concurrency=self.handler_concurrency,
            receipt_timeouts=self.receipt_timeouts,
            handler_retry_delays=self.handler_retry_delays,
            request_ttl=self.request_ttl,
        )
        return replace(config, **overrides)
