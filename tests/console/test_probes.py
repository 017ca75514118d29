"""The console's probes and contract: /health, /ready and /asyncapi.json, without a session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exchange._clock import FrozenClock
from exchange.audit.central import SQLiteCentralStore
from exchange.catalog import Catalog
from exchange.catalog.asyncapi import asyncapi_document
from exchange.config import packaged
from exchange.console import ConsoleSettings, create_app
from exchange.exceptions import NotReady
from exchange.testing import ThrowawayPKI
from exchange.transport.names import BusNames
from tests.catalog.test_asyncapi import errors, validator  # noqa: F401 (a fixture)

NAMES = BusNames("probe.")
Client = TestClient[web.Request, web.Application]


async def _broker_down() -> None:
    raise NotReady("not connected to RabbitMQ at amqp://127.0.0.1:1/; reconnecting", check="broker")


@pytest.fixture
async def client(
    tmp_path: Path, users_path: Path, fresh_pki: ThrowawayPKI, clock: FrozenClock
) -> AsyncIterator[Client]:
    """A console on a PKI of its own, at its time, with a replay connection that is down."""
    central = SQLiteCentralStore(tmp_path / "central.db")
    await central.open()
    catalog = Catalog.load(packaged("catalog.toml"), packaged("schemas"))
    app = create_app(
        central,
        catalog,
        fresh_pki.path,
        clock,
        ConsoleSettings(users=users_path),
        names=NAMES,
        checks={"broker": _broker_down},
    )
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await central.close()


async def test_health_answers_without_a_session(client: Client) -> None:
    """/health says the console is alive, sets no cookie and keeps no session."""
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "alive", "name": "console"}
    assert "Set-Cookie" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_ready_names_what_is_not_ready(client: Client) -> None:
    """/ready runs the console's own checks and the caller's: 503 naming the broker."""
    response = await client.get("/ready")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not-ready"
    assert body["checks"]["central-log"] == "ok"
    assert body["checks"]["trust"] == "ok"
    assert "not connected to RabbitMQ" in body["checks"]["broker"]
    assert "Set-Cookie" not in response.headers


async def test_ready_fails_without_a_current_crl(
    client: Client,
    fresh_pki: ThrowawayPKI,
) -> None:
    """With the CRL gone, the trust check names the problem."""
    (fresh_pki.path / "crl.pem").unlink()
    body = await (await client.get("/ready")).json()
    assert body["checks"]["trust"] != "ok"


async def test_asyncapi_document_is_served_and_valid(
    client: Client,
    validator: jsonschema.Draft7Validator,  # noqa: F811 (the fixture)
) -> None:
    """/asyncapi.json is the bus's AsyncAPI 3.0 document for the console's prefix, valid
    against the official schema."""
    response = await client.get("/asyncapi.json")
    assert response.status == 200
    document = await response.json()
    assert errors(validator, document) == []
    catalog = Catalog.load(packaged("catalog.toml"), packaged("schemas"))
    assert document == asyncapi_document(catalog, NAMES)
