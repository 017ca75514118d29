"""Tunables of a node: formats, time-outs, retry schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from exchange.signing.base import WireFormat

DEFAULT_WORKERS = 2
MAX_WORKERS = 64


def check_workers(workers: int) -> int:
    """A valid number of verification threads.

    Raises:
        ValueError: below 1 or above MAX_WORKERS (the message says what to set).
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(
            f"EXCHANGE_VERIFY_WORKERS must be 1 to {MAX_WORKERS} threads, not {workers}; "
            f"{DEFAULT_WORKERS} suits most nodes"
        )
    return workers


@dataclass(frozen=True)
class NodeConfig:
    """How a node paces itself. Defaults suit production; tests shorten them."""

    wire_format: WireFormat = WireFormat.XML
    request_ttl: timedelta = timedelta(days=3)  # a request undelivered by then is final
    receipt_timeouts: tuple[float, ...] = (5.0, 15.0, 60.0, 300.0)  # resend a request after
    handler_retry_delays: tuple[float, ...] = (1.0, 10.0, 60.0)  # then dead + fault
    # A parked request (its handler waits) is looked at again this often, in case the
    # answer it waits on reached another process of the party; waiting never uses the budget.
    wait_recheck: float = 60.0
    publish_grace: float = 5.0  # a stored message not confirmed by then is republished
    poll_interval: float = 0.25  # how often relay and worker look at the store
    handler_concurrency: int = 16
    # How long a worker's claim of a request lasts unless renewed: a process that dies
    # holding claims delays those requests by up to this long, then another takes them over.
    claim_lease: float = 30.0
    max_envelope_bytes: int = 1024 * 1024
    verify_workers: int = DEFAULT_WORKERS  # threads that verify deliveries off the event loop
    verify_inline_bytes: int = 16 * 1024  # a delivery up to this size is verified on the loop
    message_retention: timedelta | None = None  # prune finished messages' content after this
    metadata_only: bool = False  # prune a finished message's content at the next look
    declare_topology: bool = True  # False: the admin applied it; the node may not configure
    prune_interval: float = 5.0  # how often the pruner looks (when either is set)
    dead_letter_census: float = 30.0  # how often the broker's dead letters are looked at
    attachment_chunk: int = 1024 * 1024  # bytes of attachment per chunk message
    attachment_window: int = 8  # chunks published and unconfirmed at most (flow control)
    attachment_prefetch: int = 4  # chunks delivered and unacked at most (memory stays flat)
    # A chunk that comes before its envelope is verified waits this long for it, then it is
    # quarantined as unexpected.
    attachment_grace: float = 5.0
    # How long a request waits for its attachments before ``attachment-missing``; None: a
    # tenth of its service's regulated deadline (in calendar days), at most until it expires.
    attachment_wait: timedelta | None = None
    # Retention leaves an attachment alone this long after its newest reference was noted
    # (that message may not be committed yet).
    attachment_settle: float = 60.0

    def __post_init__(self) -> None:
        check_workers(self.verify_workers)

    def receipt_timeout(self, attempt: int) -> timedelta:
        """Time to wait for a receipt after the ``attempt``-th send (1-based)."""
        index = min(max(attempt, 1), len(self.receipt_timeouts)) - 1
        return timedelta(seconds=self.receipt_timeouts[index])
