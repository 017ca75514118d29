"""``exchange node run`` finds the party's adapter through the catalog, or says what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

DATA = Path(__file__).resolve().parents[1] / "data"


def test_an_adapter_that_does_not_import_stops_the_node(
    cli: Callable[..., Result], ca: Path, tmp_path: Path
) -> None:
    """The catalog names a package that is not installed: adapter-invalid, before any broker."""
    text = (DATA / "catalog.toml").read_text(encoding="utf-8")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        text.replace(
            'name = "Single Center for Municipal Services"\n',
            'name = "Single Center for Municipal Services"\nadapter = "no_such_adapter"\n',
            1,
        ),
        encoding="utf-8",
    )
    env = {
        "EXCHANGE_CATALOG": str(catalog),
        "EXCHANGE_SCHEMAS_DIR": str(DATA / "schemas"),
        "EXCHANGE_STORE_DIR": str(tmp_path / "stores"),
        "EXCHANGE_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",  # never reached
    }
    result = cli("node", "run", "single-center", env=env)
    assert result.exit_code == 1
    assert "adapter-invalid" in result.output
    assert "cannot import no_such_adapter.config" in result.output
