"""``exchange sla``: open requests and turnaround read from the parties' stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from typer.testing import Result

from exchange._clock import FrozenClock
from exchange.node.parking import Parked, write_parked
from exchange.node.store import PostgresStore, SQLiteStore, Store
from tests.deadlines._weeks import AS_OF, IMPROVEMENT, URBAN_PERMITS, Request, write
from tests.postgres import DSN, drop_schemas, schemas_like

REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., Result]


async def _fill(store: Store, requests: tuple[Request, ...]) -> None:
    await store.open()
    try:
        await write(store, requests)
    finally:
        await store.close()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """EXCHANGE_STORE_DIR, with the stores of improvement and urban-permits filled."""
    folder = tmp_path / "var"
    clock = FrozenClock(AS_OF)
    asyncio.run(_fill(SQLiteStore(folder / "improvement.db", "improvement", clock), IMPROVEMENT))
    asyncio.run(
        _fill(SQLiteStore(folder / "urban-permits.db", "urban-permits", clock), URBAN_PERMITS)
    )
    return folder


@pytest.fixture
def sla(cli: Cli, store_dir: Path) -> Cli:
    """``exchange sla ...`` against the city's catalog and the filled stores."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        city = {
            "EXCHANGE_CATALOG": str(REPO / "exchange/data/catalog.toml"),
            "EXCHANGE_SCHEMAS_DIR": str(REPO / "exchange/data/schemas"),
            "EXCHANGE_STORE_DIR": str(store_dir),
        }
        return cli("sla", *args, env={**city, **(env or {})})

    return run


def as_json(result: Result) -> Any:
    """The command's JSON output."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_of_every_party_with_a_store(sla: Cli, store_dir: Path) -> None:
    """Without parties, every party with a store is reported, and no store is created."""
    data = as_json(sla("--json", "--as-of", "2026-03-04T13:00"))
    assert data["as_of"] == "2026-03-04T13:00:00+03:00"
    assert [r["message_id"] for r in data["open"]] == ["t6", "u1", "s2", "t8", "t7"]
    assert [r["days_left"] for r in data["open"]] == [-8, -1, 0, 12, 12]
    trees = data["turnaround"][0]
    assert trees["service"] == "tree-felling-permit"
    assert (trees["median_days"], trees["on_time_share"]) == (14, 0.6)
    assert trees["p90_days"] == pytest.approx(16.2)
    assert data["skipped"] == 1
    assert sorted(p.name for p in store_dir.glob("*.db")) == ["improvement.db", "urban-permits.db"]


def test_as_of_with_an_offset(sla: Cli) -> None:
    """An --as-of with its own offset means the same moment."""
    local = as_json(sla("--json", "--as-of", "2026-03-04T13:00"))
    utc = as_json(sla("--json", "--as-of", "2026-03-04T10:00:00+00:00"))
    assert local["open"] == utc["open"]
    assert local["turnaround"] == utc["turnaround"]


def test_named_party(sla: Cli) -> None:
    """Naming a party reports only that party."""
    data = as_json(sla("urban-permits", "--json", "--as-of", "2026-03-04T13:00"))
    assert [r["message_id"] for r in data["open"]] == ["u1"]
    assert {r["party"] for r in data["turnaround"]} == {"urban-permits"}


def test_tables(sla: Cli) -> None:
    """The two tables: open requests with their due dates, turnaround against deadlines."""
    result = sla("--as-of", "2026-03-04T13:00")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Open requests as of 2026-03-04 13:00" in out
    assert "8d overdue" in out
    assert "2026-02-24" in out
    assert "14 calendar days" in out
    assert "14 working days" in out
    assert "60%" in out
    assert "16.2" in out
    assert out.index("t6") < out.index("u1") < out.index("s2")
    assert "1 request(s) left out" in out


def test_a_parked_request_shows_what_it_waits_on(sla: Cli, store_dir: Path) -> None:
    """An open request whose handler waits shows the awaited request, in JSON and the table."""

    async def park() -> None:
        store = SQLiteStore(store_dir / "improvement.db", "improvement", FrozenClock(AS_OF))
        await store.open()
        try:
            async with store.transaction() as tx:
                write_parked(tx, "t6", Parked("question-t6", AS_OF, waits=1))
        finally:
            await store.close()

    asyncio.run(park())
    data = as_json(sla("--json", "--as-of", "2026-03-04T13:00"))
    waits = {r["message_id"]: r["waiting_on"] for r in data["open"]}
    assert waits == {"t6": "question-t6", "u1": None, "s2": None, "t8": None, "t7": None}
    table = sla("--as-of", "2026-03-04T13:00")
    assert "waiting on" in table.stdout
    assert "question-t6" in table.stdout


def test_no_stores(cli: Cli, tmp_path: Path) -> None:
    """With no store at all the report is empty, not an error."""
    env = {
        "EXCHANGE_CATALOG": str(REPO / "exchange/data/catalog.toml"),
        "EXCHANGE_SCHEMAS_DIR": str(REPO / "exchange/data/schemas"),
        "EXCHANGE_STORE_DIR": str(tmp_path / "empty"),
    }
    data = as_json(cli("sla", "--json", env=env))
    assert (data["open"], data["turnaround"], data["skipped"]) == ([], [], 0)


def test_unknown_party(sla: Cli) -> None:
    """A party the catalog does not know is an error."""
    result = sla("nobody")
    assert result.exit_code == 1
    assert "error unknown-party" in result.stderr


def test_party_without_store(sla: Cli, store_dir: Path) -> None:
    """A named party with no store is an error, and no store is created for it."""
    result = sla("architecture")
    assert result.exit_code == 1
    assert "error store-error: architecture has no store yet" in result.stderr
    assert not (store_dir / "architecture.db").exists()


def test_bad_as_of(sla: Cli) -> None:
    """An --as-of that is not a date-time is a usage error."""
    result = sla("--as-of", "next tuesday")
    assert result.exit_code == 2
    assert "ISO date-time" in result.output


@pytest.mark.postgres
def test_postgres_stores(cli: Cli) -> None:
    """With EXCHANGE_STORE_DSN the parties' schemas are read; missing ones are not created."""
    prefix = f"tslacli{uuid4().hex[:8]}"

    async def fill() -> None:
        schema = f"{prefix}_improvement"
        await _fill(PostgresStore(DSN, "improvement", FrozenClock(AS_OF), schema), IMPROVEMENT)

    try:
        asyncio.run(fill())
        env = {
            "EXCHANGE_CATALOG": str(REPO / "exchange/data/catalog.toml"),
            "EXCHANGE_SCHEMAS_DIR": str(REPO / "exchange/data/schemas"),
            "EXCHANGE_STORE_DSN": DSN,
            "EXCHANGE_BUS_PREFIX": f"{prefix}.",
        }
        data = as_json(cli("sla", "--json", "--as-of", "2026-03-04T13:00", env=env))
        assert [r["message_id"] for r in data["open"]] == ["t6", "s2", "t8", "t7"]
        assert {r["party"] for r in data["turnaround"]} == {"improvement"}
        assert asyncio.run(schemas_like(prefix)) == [f"{prefix}_improvement"]
    finally:
        asyncio.run(drop_schemas(prefix))
