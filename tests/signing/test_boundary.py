"""unseal is total: a verified envelope or an ExchangeError, whatever happens inside."""

from __future__ import annotations

import pytest
import structlog

import exchange.signing as signing
from exchange._clock import FrozenClock
from exchange.exceptions import ExchangeError, Malformed, VerifyFailed
from exchange.pki.trust import TrustStore
from exchange.signing import unseal
from exchange.signing._boundary import total, unexpected_count


def _crash(*_args: object, **_kwargs: object) -> object:
    raise KeyError("a bug deep inside a parser")


def test_unexpected_exception_becomes_verify_failed(
    monkeypatch: pytest.MonkeyPatch, trust: TrustStore, clock: FrozenClock
) -> None:
    """A non-ExchangeError inside verification is VerifyFailed, logged with its trace, counted."""
    monkeypatch.setattr(signing, "verify_jws", _crash)
    before = unexpected_count()
    with structlog.testing.capture_logs() as logs, pytest.raises(VerifyFailed) as caught:
        unseal(b'{"protected":"","payload":"","signature":""}', trust, clock=clock)
    assert caught.value.code == "verify-failed"
    assert isinstance(caught.value.__cause__, KeyError)
    assert unexpected_count() == before + 1
    [entry] = [entry for entry in logs if entry["event"] == "verify.unexpected"]
    assert entry["log_level"] == "error"
    assert entry["exc_type"] == "KeyError"
    assert isinstance(entry["exc_info"], KeyError)  # rendered as a stack trace


def test_exchange_errors_pass_unchanged(trust: TrustStore, clock: FrozenClock) -> None:
    """A named refusal keeps its class and code, and is not counted as unexpected."""
    before = unexpected_count()
    with pytest.raises(Malformed):
        unseal(b"neither", trust, clock=clock)
    assert unexpected_count() == before


def test_total_returns_the_result() -> None:
    """What the verification returns comes back unchanged."""
    assert total(lambda: 42) == 42


def test_verify_failed_is_an_exchange_error() -> None:
    """Callers that handle ExchangeError handle VerifyFailed too (quarantine, exit 1)."""
    assert issubclass(VerifyFailed, ExchangeError)
