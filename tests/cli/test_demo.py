"""``exchange demo``: the signing round trip runs, twice in a row, on its own PKI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from exchange.cli import app


def test_demo_runs_twice_and_refuses_the_tampered_copy(tmp_path: Path) -> None:
    """The demo creates its PKI once, binds the receipt to the request and refuses tampering."""
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--certs-dir", str(tmp_path)])
    second = runner.invoke(app, ["demo", "--certs-dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "created the root CA" in first.output
    assert "created the root CA" not in second.output
    for run in (first.output, second.output):
        assert "binds the request" in run
        assert "signature-invalid" in run
