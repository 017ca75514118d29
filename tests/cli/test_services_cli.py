"""``exchange services``: the catalog's table and one service's contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

REPO = Path(__file__).resolve().parents[2]
CITY = {
    "EXCHANGE_CATALOG": str(REPO / "exchange/data/catalog.toml"),
    "EXCHANGE_SCHEMAS_DIR": str(REPO / "exchange/data/schemas"),
}
Cli = Callable[..., Result]


@pytest.fixture
def services(cli: Cli) -> Cli:
    """``exchange services ...`` against the city's catalog."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return cli("services", *args, env={**CITY, **(env or {})})

    return run


def as_json(result: Result) -> Any:
    """The command's JSON output."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lists_every_service(services: Cli) -> None:
    """The table has each service with its provider, callers and deadline."""
    result = services()
    assert result.exit_code == 0, result.output
    for code in ("architectural-appearance", "signage-project", "excavation-permit"):
        assert code in result.stdout
    assert "tree-felling-permit" in result.stdout
    assert "14 calendar days" in result.stdout
    assert "5 working days" in result.stdout
    assert "urban-permits" in result.stdout


def test_lists_as_json(services: Cli) -> None:
    """``--json`` gives one object per service, in catalog order."""
    rows = as_json(services("--json"))
    assert [row["code"] for row in rows][:2] == ["architectural-appearance", "signage-project"]
    trees = next(row for row in rows if row["code"] == "tree-felling-permit")
    assert trees["provider"] == "improvement"
    assert trees["callers"] == ["single-center"]
    assert trees["deadline"] == {"days": 14, "working_days": False, "text": "14 calendar days"}


def test_show_prints_the_contract(services: Cli) -> None:
    """Provider, callers, deadline, schema files and the fields of both payloads."""
    result = services("show", "land-plot-info")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "provider   land-property (Committee of Land and Property Relations)" in out
    assert "architecture" in out
    assert "deadline   5 working days" in out
    assert str(REPO / "exchange/data/schemas/services/land-plot-info/1/request.xsd") in out
    assert "rights[].registered_on" in out
    assert "request payload" in out
    assert "response payload" in out


def test_show_as_json_lists_fields_with_required_flags(services: Cli) -> None:
    """Each field has its path, type, required flag, rules and description."""
    contract = as_json(services("show", "tree-felling-permit", "--json"))
    assert contract["provider"] == "improvement"
    assert contract["deadline"]["days"] == 14
    for path in contract["schemas"].values():
        assert Path(path).is_file()
    fields = {field["path"]: field for field in contract["request"]}
    assert fields["trees[]"]["type"] == "list of object"
    assert fields["trees[]"]["required"] is True
    assert fields["trees[].count"] == {
        "path": "trees[].count",
        "type": "integer",
        "required": True,
        "rules": "1..1000",
        "description": "How many",
    }
    assert fields["applicant.email"]["required"] is False
    assert "pattern" in fields["cadastral_number"]["rules"]
    response = {field["path"]: field for field in contract["response"]}
    assert response["valid_until"]["type"] == "date"
    assert "granted" in response["decision"]["rules"]


def test_show_unknown_service(services: Cli) -> None:
    """An unknown code is an error with its code, not a traceback."""
    result = services("show", "snow-removal")
    assert result.exit_code == 1
    assert "error unknown-service" in result.stderr


def test_follows_exchange_catalog(services: Cli) -> None:
    """EXCHANGE_CATALOG points at another catalog: the small test catalog has two services."""
    data = REPO / "tests" / "data"
    env = {
        "EXCHANGE_CATALOG": str(data / "catalog.toml"),
        "EXCHANGE_SCHEMAS_DIR": str(data / "schemas"),
    }
    rows = as_json(services("--json", env=env))
    assert [row["code"] for row in rows] == ["tree-felling-permit", "land-plot-info"]


def test_broken_catalog(services: Cli, tmp_path: Path) -> None:
    """A catalog that does not load is reported as catalog-invalid."""
    broken = tmp_path / "catalog.toml"
    broken.write_text("version = \n")
    result = services(env={"EXCHANGE_CATALOG": str(broken)})
    assert result.exit_code == 1
    assert "error catalog-invalid" in result.stderr
