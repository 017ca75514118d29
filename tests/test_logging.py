"""exchange._logging: our lines and the libraries' (aiormq, aio_pika) as one JSON stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from exchange._logging import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were (configure_logging is global)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def test_library_lines_are_json_with_the_logger_name(capsys: pytest.CaptureFixture[str]) -> None:
    """A stdlib record of aiormq comes out as a JSON object with level, logger and timestamp."""
    configure_logging("debug")
    logging.getLogger("aiormq.connection").warning("Connection lost: %s", "reset")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "Connection lost: reset"
    assert record["level"] == "warning"
    assert record["logger"] == "aiormq.connection"
    assert "timestamp" in record


def test_the_level_applies_to_library_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """At WARNING, a library's debug chatter is left out; our own warnings are JSON too."""
    configure_logging("WARNING")
    logging.getLogger("aio_pika.connection").debug("Channel created")
    structlog.get_logger("exchange.test").warning("bus.disconnected", error="x")
    lines = capsys.readouterr().err.strip().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["bus.disconnected"]


def test_calling_twice_keeps_one_handler() -> None:
    """Each command configures logging once, but tests call it again: no duplicate lines."""
    configure_logging("INFO")
    configure_logging("INFO")
    names = [handler.get_name() for handler in logging.getLogger().handlers]
    assert names.count("exchange-json") == 1
