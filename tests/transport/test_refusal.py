"""A broker that refuses us fails at once and says why; one that is not there is retried."""

from __future__ import annotations

import socket

import pytest

from exchange.exceptions import BrokerRefused, BrokerUnavailable
from exchange.transport.admin import check_broker
from exchange.transport.bus import Bus

pytestmark = pytest.mark.rabbit

WRONG_PASSWORD = "amqp://guest:not-the-password@127.0.0.1:5672/"
WRONG_VHOST = "amqp://guest:guest@127.0.0.1:5672/no-such-vhost"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_wrong_password_is_refused_at_once_naming_access_refused() -> None:
    """The real broker's ACCESS_REFUSED: broker-refused before the 60 s timeout, naming the user."""
    bus = Bus(WRONG_PASSWORD)
    with pytest.raises(BrokerRefused) as info:
        await bus.start(timeout=60)
    assert info.value.code == "broker-refused"
    assert info.value.reason == "ACCESS_REFUSED"
    assert "refused the login of user 'guest' (ACCESS_REFUSED)" in info.value.message
    assert "password in EXCHANGE_AMQP_URL" in info.value.message
    assert "not-the-password" not in info.value.message
    assert not bus.connected


async def test_a_wrong_vhost_is_refused_at_once_naming_not_allowed() -> None:
    """The real broker's NOT_ALLOWED for a vhost: broker-refused naming the vhost."""
    with pytest.raises(BrokerRefused) as info:
        await Bus(WRONG_VHOST).start(timeout=60)
    assert info.value.reason == "NOT_ALLOWED"
    assert "refused the virtual host 'no-such-vhost'" in info.value.message
    assert "rabbitmqctl add_vhost" in info.value.message


async def test_an_unreachable_broker_is_retried_then_reported_unavailable() -> None:
    """Nothing listening: broker-unavailable after retrying, saying so and what to start."""
    with pytest.raises(BrokerUnavailable) as info:
        await Bus(f"amqp://guest:guest@127.0.0.1:{closed_port()}/").start(timeout=1)
    assert info.value.code == "broker-unavailable"
    assert "retried for 1 s" in info.value.message
    assert "rabbitmq-server" in info.value.message


@pytest.mark.parametrize(
    ("url", "reason"), [(WRONG_PASSWORD, "ACCESS_REFUSED"), (WRONG_VHOST, "NOT_ALLOWED")]
)
async def test_the_one_off_check_tells_refused_apart(url: str, reason: str) -> None:
    """check_broker (the demo's first look) raises broker-refused, not a library error."""
    with pytest.raises(BrokerRefused) as info:
        await check_broker(url)
    assert info.value.reason == reason


async def test_the_one_off_check_lets_unreachable_through() -> None:
    """Unreachable stays a connection error, which the demo reports as broker-unavailable."""
    with pytest.raises(ConnectionError):
        await check_broker(f"amqp://guest:guest@127.0.0.1:{closed_port()}/")
