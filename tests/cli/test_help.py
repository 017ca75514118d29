"""``--help`` everywhere: no ``<bool>`` on flags, one ``--certs-dir``, all groups described."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import typer.main
from typer.testing import CliRunner

from exchange.cli import app

WIDE = {"COLUMNS": "200"}


def command_paths() -> list[list[str]]:
    """Every command and group of ``exchange``, as the words that invoke it."""
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


PATHS = command_paths()


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "exchange" for p in PATHS])
def test_help_has_no_bool_metavar_and_one_certs_option(path: list[str]) -> None:
    """Flags show no type; a PKI directory is always --certs-dir with a truthful default."""
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--certs " not in result.output
    if "--certs-dir" in result.output:
        assert "EXCHANGE_CERTS_DIR, else" in result.output
        assert "./certs" not in result.output  # it resolves to the checkout, and says so


def test_there_are_commands_to_check() -> None:
    """The walk finds the groups and their commands (so the test above checks something)."""
    assert ["certs", "revoke"] in PATHS
    assert ["status"] in PATHS


def test_version() -> None:
    """--version prints the installed package's version and exits 0."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"exchange {version('kazan-exchange')}"


def test_top_level_help_describes_every_command_group() -> None:
    """The overview names each command, not only certificates and signing."""
    result = CliRunner().invoke(app, ["--help"], env=WIDE)
    overview = result.output.split("Options")[0]
    top = {path[0] for path in PATHS if len(path) == 1}
    assert top
    for name in top:
        assert f"`{name}" in overview, name
