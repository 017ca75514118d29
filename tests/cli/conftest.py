"""Fixtures for the CLI tests: a runner bound to a scratch certs directory, envelope files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from exchange._clock import SystemClock
from exchange._hazmat.xml import serialize
from exchange.cli import app
from exchange.codec import encode_json, encode_xml
from exchange.testing import make_envelope


@pytest.fixture
def certs_dir(tmp_path: Path) -> Path:
    """Where this test's CA lives (EXCHANGE_CERTS_DIR for every invocation)."""
    return tmp_path / "certs"


@pytest.fixture
def cli(certs_dir: Path) -> Callable[..., Result]:
    """Invoke ``exchange`` in-process with EXCHANGE_CERTS_DIR set; unexpected errors propagate."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        result = runner.invoke(
            app,
            list(args),
            env={"EXCHANGE_CERTS_DIR": str(certs_dir), **(env or {})},
            catch_exceptions=False,
        )
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def ca(cli: Callable[..., Result], certs_dir: Path) -> Path:
    """A root CA with an EC certificate for ``single-center``, made through the CLI."""
    assert cli("certs", "init-ca").exit_code == 0
    assert cli("certs", "issue", "single-center").exit_code == 0
    return certs_dir


@pytest.fixture
def unsigned(tmp_path: Path) -> Callable[..., Path]:
    """Write an unsigned envelope file (``xml`` or ``json``) created now, by the real clock."""

    def write(wire_format: str = "xml", name: str | None = None, **fields: Any) -> Path:
        envelope = make_envelope(clock=SystemClock(), **fields)
        data = serialize(encode_xml(envelope)) if wire_format == "xml" else encode_json(envelope)
        path = tmp_path / (name or f"{envelope.message_id}.{wire_format}")
        path.write_bytes(data)
        return path

    return write
