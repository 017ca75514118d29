"""``exchange topology``, ``send`` and ``dlq`` against the real broker and in-process nodes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from typer.testing import CliRunner, Result

from exchange.cli import app
from exchange.config import Settings
from exchange.node import IncomingRequest, Notice, build_node
from exchange.node.store.base import InboxState
from exchange.transport.names import BusNames
from tests.bus import conftest as bus_fixtures
from tests.bus.conftest import AMQP_URL, BUS_PARTIES, FAST, MakeNode
from tests.bus.helpers import audit_events

pytestmark = pytest.mark.rabbit

# The broker fixtures of tests/bus, shared here: live PKI, session prefix, settings, nodes.
live_pki = bus_fixtures.live_pki
bus_prefix = bus_fixtures.bus_prefix
settings = bus_fixtures.settings
make_node = bus_fixtures.make_node

TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}
GRANTED = {"decision": "granted", "permit_number": "TF-CLI"}


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the CLI from pointing structlog at the runner's stream, closed after each call.

    ``configure_logging`` binds sys.stderr as it is then (the runner's capture) and caches
    loggers, so the in-process nodes of later tests would write to a closed file.
    """
    monkeypatch.setattr("exchange.cli.bus.configure_logging", lambda *_, **__: None)


@pytest.fixture
def env(settings: Settings) -> dict[str, str | None]:
    """EXCHANGE_* variables that point the CLI at the same PKI, catalog, prefix and stores."""
    return {
        "EXCHANGE_CERTS_DIR": str(settings.certs_dir),
        "EXCHANGE_CATALOG": str(settings.catalog),
        "EXCHANGE_SCHEMAS_DIR": str(settings.schemas_dir),
        "EXCHANGE_BUS_PREFIX": settings.bus_prefix,
        "EXCHANGE_STORE_DIR": str(settings.store_dir),
        "EXCHANGE_AMQP_URL": AMQP_URL,
        "EXCHANGE_STORE_DSN": None,  # SQLite, as the in-process nodes use
        "COLUMNS": "200",  # rich tables must not fold the queue names
    }


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    """A tree-felling request payload as a JSON file."""
    path = tmp_path / "trees.json"
    path.write_text(json.dumps(TREES))
    return path


def invoke(env: Mapping[str, str | None], *args: str) -> Result:
    """Run ``exchange`` in-process; unexpected exceptions propagate."""
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


async def invoke_async(env: Mapping[str, str | None], *args: str) -> Result:
    """Run ``exchange`` in a thread: it calls asyncio.run, which a running loop cannot host."""
    return await asyncio.to_thread(invoke, env, *args)


def json_output(result: Result) -> Any:
    """The indented JSON document the command printed on stdout (log lines may precede it)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


def test_topology_apply_declares_and_lists_every_inbox(
    env: dict[str, str | None], settings: Settings
) -> None:
    """`exchange topology apply` declares each party's inbox and lists it."""
    names = BusNames(settings.bus_prefix)

    result = invoke(env, "topology", "apply")

    assert result.exit_code == 0, result.output
    for party in BUS_PARTIES:
        assert names.inbox(party) in result.output
        assert names.dead_letters(party) in result.output

    async def declared() -> list[str]:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            found = []
            for party in BUS_PARTIES:
                queue = await channel.declare_queue(names.inbox(party), passive=True)
                found.append(queue.name)
            return found

    assert asyncio.run(declared()) == [names.inbox(party) for party in BUS_PARTIES]


async def test_send_wait_prints_the_response(
    make_node: MakeNode, env: dict[str, str | None], payload_file: Path
) -> None:
    """`exchange send --wait` prints the provider's response as JSON and exits 0."""
    provider = await make_node("improvement")
    calls: list[str] = []

    @provider.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        calls.append(request.message_id)
        return GRANTED

    result = await invoke_async(
        env,
        "send",
        "--from",
        "single-center",
        "--to",
        "improvement",
        "--service",
        "tree-felling-permit",
        "--payload",
        str(payload_file),
        "--case-id",
        "KZN-CLI-1",
        "--wait",
        "--timeout",
        "20",
    )

    assert result.exit_code == 0, result.output
    output = json_output(result)
    assert output["answer"] == "response"
    assert output["payload"] == GRANTED
    assert output["sender"] == "single-center"
    assert output["to"] == "improvement"
    assert calls == [output["message_id"]]
    received = await provider.ctx.store.get_inbox(output["message_id"])
    assert received is not None
    assert received.state is InboxState.ANSWERED
    assert received.case_id == "KZN-CLI-1"


async def test_dlq_replay_of_a_final_fault_is_refused_and_refile_gets_it_answered(
    make_node: MakeNode, settings: Settings, env: dict[str, str | None]
) -> None:
    """`dlq replay` of a request answered with processing-failed is refused; --refile answers.

    The refiled request has a new id and the same case id, and the old one stays dead.
    """
    sender = await make_node("single-center")
    seen: list[Notice] = []
    sender.on_notice(seen.append)
    broken = build_node("improvement", settings, config=FAST)

    @broken.handler("tree-felling-permit")
    async def fail(request: IncomingRequest) -> dict[str, Any]:
        raise RuntimeError("registry down")

    async with broken:
        request_id = await sender.request("tree-felling-permit", TREES, case_id="KZN-DLQ-1")
        fault = await sender.wait_answer(request_id, timeout=10)
    assert fault.envelope is not None
    assert fault.envelope.fault is not None
    assert fault.envelope.fault.code == "processing-failed"

    listed = await invoke_async(env, "dlq", "list", "improvement", "--json")

    assert listed.exit_code == 0, listed.output
    rows = [row for row in json_output(listed) if row["where"] == "store"]
    assert [row["message_id"] for row in rows] == [request_id]
    assert rows[0]["sender"] == "single-center"
    assert rows[0]["service"] == "tree-felling-permit"
    assert rows[0]["attempts"] == len(FAST.handler_retry_delays) + 1

    refused = await invoke_async(env, "dlq", "replay", "improvement", request_id)

    assert refused.exit_code == 1
    assert "error already-final" in refused.stderr
    assert f"exchange send --from single-center --refile {request_id}" in refused.stderr
    replayed_all = await invoke_async(env, "dlq", "replay", "improvement")

    assert replayed_all.exit_code == 0, replayed_all.output
    assert "replayed 0 broker dead letter(s) for improvement" in replayed_all.output
    assert f"not replayed: request {request_id} from single-center is final" in (
        replayed_all.output
    )
    listed_again = await invoke_async(env, "dlq", "list", "improvement", "--json")
    assert [r["message_id"] for r in json_output(listed_again) if r["where"] == "store"] == [
        request_id
    ]
    await sender.stop()  # the CLI runs single-center's node on the same store
    mended = build_node("improvement", settings, config=FAST)
    calls: list[str] = []

    @mended.handler("tree-felling-permit")
    async def grant(request: IncomingRequest) -> dict[str, Any]:
        calls.append(request.message_id)
        return GRANTED

    async with mended:
        refiled = await invoke_async(
            env, "send", "--from", "single-center", "--refile", request_id, "--wait"
        )
        assert refiled.exit_code == 0, refiled.output
        output = json_output(refiled)
        assert output["answer"] == "response"
        assert output["payload"] == GRANTED
        assert output["refiles"] == request_id
        assert output["case_id"] == "KZN-DLQ-1"
        assert output["to"] == "improvement"
        assert output["message_id"] != request_id
        old = await mended.ctx.store.get_inbox(request_id)
        assert old is not None
        assert old.state is InboxState.DEAD
        assert await audit_events(mended, "replayed") == []
    assert calls == [output["message_id"]]
    assert [n.kind for n in seen if n.final] == ["fault"]


def test_send_refile_takes_no_other_request_fields(
    env: dict[str, str | None], payload_file: Path
) -> None:
    """`exchange send --refile` with --service or --payload is a usage error naming them."""
    result = invoke(
        env,
        "send",
        "--from",
        "single-center",
        "--refile",
        "some-request",
        "--service",
        "tree-felling-permit",
        "--payload",
        str(payload_file),
    )

    assert result.exit_code == 1
    assert "error usage-error" in result.stderr
    assert "drop --service, --payload" in result.stderr


def test_send_without_broker_fails_with_a_hint(
    env: dict[str, str | None], payload_file: Path
) -> None:
    """`exchange send` to an unreachable broker exits 1 with broker-unavailable and advice.

    Takes the node's 15 s connect timeout.
    """
    env = {**env, "EXCHANGE_AMQP_URL": "amqp://guest:guest@127.0.0.1:5999/"}

    result = invoke(
        env,
        "send",
        "--from",
        "single-center",
        "--to",
        "improvement",
        "--service",
        "tree-felling-permit",
        "--payload",
        str(payload_file),
    )

    assert result.exit_code == 1
    assert "error broker-unavailable" in result.stderr
    assert "EXCHANGE_AMQP_URL" in result.stderr
    assert "guest:***@127.0.0.1:5999" in result.stderr
    assert "guest:guest@" not in result.output


def test_send_with_broken_json_payload_is_malformed(
    env: dict[str, str | None], tmp_path: Path
) -> None:
    """A JSON payload file that is not strict JSON: exit 1, malformed, no traceback."""
    broken = tmp_path / "broken.json"
    broken.write_text('{"address": "Kazan", "address": "twice"}')

    result = invoke(
        env,
        "send",
        "--from",
        "single-center",
        "--to",
        "improvement",
        "--service",
        "tree-felling-permit",
        "--payload",
        str(broken),
    )

    assert result.exit_code == 1
    assert "error malformed: the payload file is not valid JSON" in result.stderr
    assert "not an envelope: see examples/payloads/" in result.stderr
    assert "hint: the file must be an envelope" not in result.stderr
    assert "Traceback" not in result.output
