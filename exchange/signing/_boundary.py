"""The boundary that makes verification total: a named refusal or a verified result.

Anything the parsers, decoders or key loaders raise that is not an ``ExchangeError`` is a
bug in our code or a library's, met on hostile input. It must not escape as a traceback
(the CLI) or a requeue loop (a node): it becomes ``VerifyFailed``, is logged with its stack
trace, and is counted so tests and operators can see that it happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import structlog

from exchange.exceptions import ExchangeError, VerifyFailed

T = TypeVar("T")

_lock = threading.Lock()
_unexpected = 0


def unexpected_count() -> int:
    """How many unexpected exceptions verification turned into ``VerifyFailed`` so far."""
    return _unexpected


def total(verify: Callable[[], T]) -> T:
    """Run ``verify``; let ``ExchangeError`` through, turn anything else into ``VerifyFailed``.

    Raises:
        ExchangeError: what ``verify`` raised, or VerifyFailed (verify-failed) in its place.
    """
    global _unexpected  # one process-wide counter, read by tests and metrics
    try:
        return verify()
    except ExchangeError:
        raise
    except Exception as exc:  # fail closed: whatever it was, nothing is trusted
        with _lock:  # verification runs in worker threads
            _unexpected += 1
        # A fresh logger: it follows the configuration of the moment (a CLI silences it).
        structlog.get_logger("exchange.signing").error(
            "verify.unexpected", exc_type=type(exc).__name__, exc_info=exc
        )
        raise VerifyFailed(
            f"the envelope could not be verified ({type(exc).__name__}); it is refused",
            exc_type=type(exc).__name__,
        ) from exc
