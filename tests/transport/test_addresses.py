"""Several broker addresses: parsing, redaction, and a bus that takes the one that answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from exchange.config import Settings
from exchange.transport.addresses import broker_addresses, connect_any, redacted
from exchange.transport.bus import Bus
from tests._broker import free_port

MACHINE = "amqp://guest:guest@127.0.0.1:5672/"


def test_addresses_are_split_on_commas_and_spaces_in_order() -> None:
    text = "amqp://a:p@h1:5672/, amqp://a:p@h2:5672/ amqps://a:p@h3:5671/"
    assert broker_addresses(text) == (
        "amqp://a:p@h1:5672/",
        "amqp://a:p@h2:5672/",
        "amqps://a:p@h3:5671/",
    )


@pytest.mark.parametrize(
    "text", ["", " , ", "http://guest:guest@127.0.0.1/", "127.0.0.1:5672", "amqp://"]
)
def test_anything_but_amqp_urls_is_refused_with_the_form_to_use(text: str) -> None:
    with pytest.raises(ValueError, match=r"amqp://user:password@host:5672/"):
        broker_addresses(text)


def test_an_invalid_address_is_refused_when_settings_load() -> None:
    with pytest.raises(ValidationError, match="amqp_url") as caught:
        Settings(amqp_url="amqp://guest:secret@h1/,http://guest:secret@h2/")
    assert "secret" not in str(caught.value.errors()[0]["msg"])  # the password stays out


def test_redacted_hides_every_password_of_a_list() -> None:
    text = "amqp://u:one@h1:5672/,amqp://v:two@h2:5672/"
    assert redacted(text) == "amqp://u:***@h1:5672/, amqp://v:***@h2:5672/"
    assert redacted("amqp://h1/") == "amqp://h1/"


@pytest.mark.rabbit
async def test_connect_any_skips_an_address_where_nothing_listens() -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    connection = await connect_any([dead, MACHINE])
    try:
        assert not connection.is_closed
    finally:
        await connection.close()


@pytest.mark.rabbit
async def test_connect_any_raises_what_the_last_address_raised() -> None:
    first, last = free_port(), free_port()
    dead = [f"amqp://guest:guest@127.0.0.1:{port}/" for port in (first, last)]
    with pytest.raises(OSError, match=f"'127.0.0.1', {last}"):
        await connect_any(dead)


@pytest.mark.rabbit
async def test_a_bus_connects_to_the_first_address_that_answers() -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    bus = Bus(f"{dead},{MACHINE}")
    await bus.start(timeout=30)
    try:
        assert bus.connected
        assert bus.url == MACHINE
        assert bus.addresses == (dead, MACHINE)
    finally:
        await bus.stop()
