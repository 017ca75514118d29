"""The HTTP bridge on the real broker: requests in, callbacks out, answers from providers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from exchange.connectors import CallbackConfig, HttpBridge
from exchange.connectors._callbacks import STATE_KEY
from exchange.envelope.model import Kind
from exchange.ledger.event import AuditEvent, EventName
from exchange.node import IncomingRequest, Node, Reject, Waiting
from exchange.signing import WireFormat
from tests.bus.conftest import MakeNode
from tests.bus.helpers import answer_unchecked, eventually, wait_event
from tests.connectors.http_helpers import GRANTED, OPENAPI, TREES, Target, call, conforms, later

pytestmark = pytest.mark.rabbit

MakeBridge = Callable[..., Awaitable[tuple[HttpBridge, str]]]


@pytest.fixture
async def targets() -> AsyncIterator[Callable[..., Awaitable[Target]]]:
    """Start callback targets; all are stopped after the test."""
    started: list[Target] = []

    async def make(failures: int = 0) -> Target:
        started.append(await Target(failures).start())
        return started[-1]

    yield make
    for target in started:
        await target.stop()


@pytest.fixture
async def make_bridge(make_node: MakeNode) -> AsyncIterator[MakeBridge]:
    """A bridge on a node of its own (or a given one), with fast retries; stopped after the test."""
    bridges: list[HttpBridge] = []

    async def make(
        party: str, node: Node | None = None, token: str | None = None, **callbacks: Any
    ) -> tuple[HttpBridge, str]:
        config = CallbackConfig(delays=(0.05, 0.1), poll_interval=0.05, **callbacks)
        bridge = HttpBridge(node or await make_node(party), config, token=token)
        port = await bridge.start()
        bridges.append(bridge)
        return bridge, f"http://127.0.0.1:{port}"

    yield make
    for bridge in reversed(bridges):
        await bridge.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client, as the departmental system's."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


@pytest.mark.parametrize("wire_format", ["xml", "json"])
async def test_request_answered_through_callbacks(
    make_node: MakeNode,
    make_bridge: MakeBridge,
    targets: Callable[..., Awaitable[Target]],
    http: aiohttp.ClientSession,
    wire_format: str,
) -> None:
    """A POSTed request's receipt, status and response reach its callback_url, in that order."""
    provider = await make_node("improvement")
    handed: asyncio.Queue[str] = asyncio.Queue()
    provider.handler("tree-felling-permit")(later(handed))
    target = await targets()
    _, base = await make_bridge("single-center")
    body = {"service": "tree-felling-permit", "payload": TREES, "case_id": "KZN-77"}
    body |= {"format": wire_format, "callback_url": target.url}
    conforms("SendRequest", body)

    status, accepted = await call(http, "POST", f"{base}/requests", body)
    assert status == 202, accepted
    conforms("Accepted", accepted)
    request_id = accepted["message_id"]
    assert await asyncio.wait_for(handed.get(), 10) == request_id
    await provider.status(request_id, "inspection", "on Monday")
    await provider.respond(request_id, GRANTED)

    receipt, progress, response = await target.wait_kinds("receipt", "status", "response")
    for callback in (receipt, progress, response):
        conforms("Callback", callback)
        assert callback["request_id"] == request_id
        assert callback["case_id"] == "KZN-77"
    assert progress["payload"] == {"state": "inspection", "note": "on Monday"}
    assert response["payload"] == GRANTED
    status, state = await call(http, "GET", f"{base}/requests/{request_id}")
    assert status == 200
    conforms("RequestState", state)
    assert (state["direction"], state["state"], state["party"]) == (
        "sent",
        "answered",
        "improvement",
    )
    assert [a["kind"] for a in state["answers"]] == ["receipt", "status", "response"]
    assert state["answers"][-1]["payload"] == GRANTED


@pytest.mark.parametrize(
    ("party", "body", "code", "named"),
    [
        (
            "single-center",
            {
                "service": "tree-felling-permit",
                "format": "json",
                "payload": {**TREES, "trees": [{"species": "oak", "count": 0}]},
            },
            "invalid-content",
            "trees.0.count",
        ),
        (
            "single-center",
            {"service": "tree-felling-permit", "format": "xml", "payload": {"address": "x"}},
            "invalid-content",
            "applicant",
        ),
        ("single-center", {"payload": TREES}, "invalid-request", "service"),
        (
            "single-center",
            {"service": "tree-felling-permit", "payload": TREES, "callback_url": "ftp://x/"},
            "invalid-request",
            "callback_url",
        ),
        ("single-center", {"service": "no-such", "payload": {}}, "unknown-service", "no-such"),
        (
            "land-property",
            {"service": "tree-felling-permit", "payload": TREES},
            "access-denied",
            "may not",
        ),
    ],
)
async def test_refused_requests_are_400_naming_the_problem(
    make_bridge: MakeBridge,
    http: aiohttp.ClientSession,
    party: str,
    body: dict[str, Any],
    code: str,
    named: str,
) -> None:
    """A request the node refuses is a 400 with its code and a message naming the field."""
    bridge, base = await make_bridge(party)
    status, error = await call(http, "POST", f"{base}/requests", body)
    assert status == 400
    conforms("Error", error)
    assert error["code"] == code
    assert named in error["message"]
    assert await bridge.node.ctx.store.audit() == []  # nothing was sent


async def test_body_that_is_not_json_is_malformed(
    make_bridge: MakeBridge, http: aiohttp.ClientSession
) -> None:
    """A body that is not JSON is a 400 ``malformed``; an unknown request is a 404."""
    _, base = await make_bridge("single-center")
    async with http.post(f"{base}/requests", data=b"<xml/>") as response:
        assert response.status == 400
        assert (await response.json())["code"] == "malformed"
    status, error = await call(http, "GET", f"{base}/requests/no-such-id")
    assert (status, error["code"]) == (404, "unknown-message")


async def test_provider_system_gets_requests_and_answers_later(
    make_node: MakeNode,
    make_bridge: MakeBridge,
    targets: Callable[..., Awaitable[Target]],
    http: aiohttp.ClientSession,
) -> None:
    """A provider's system gets the request by callback and answers through the respond endpoint."""
    system = await targets()
    _, base = await make_bridge("improvement", requests_url=system.url)
    sender = await make_node("single-center")
    request_id = await sender.request(
        "tree-felling-permit", TREES, case_id="KZN-8", wire_format=WireFormat.JSON
    )

    (handed,) = await system.wait_kinds("request")
    conforms("Callback", handed)
    assert (handed["request_id"], handed["sender"], handed["case_id"]) == (
        request_id,
        "single-center",
        "KZN-8",
    )
    assert handed["payload"] == TREES
    status, state = await call(http, "GET", f"{base}/requests/{request_id}")
    assert (status, state["direction"], state["state"]) == (200, "received", "waiting")
    conforms("RequestState", state)

    answers = f"{base}/requests/{request_id}"
    status, sent = await call(http, "POST", f"{answers}/status", {"state": "inspection"})
    assert status == 200
    conforms("AnswerSent", sent)
    status, error = await call(http, "POST", f"{answers}/respond", {"payload": {"decision": "?"}})
    assert (status, error["code"]) == (400, "invalid-content")
    status, sent = await call(http, "POST", f"{answers}/respond", {"payload": GRANTED})
    assert status == 200

    answer = await sender.wait_answer(request_id, timeout=10)
    assert answer.kind == "response"
    assert answer.envelope is not None
    assert answer.envelope.message_id == sent["message_id"]
    assert answer.envelope.payload == GRANTED
    status, error = await call(http, "POST", f"{answers}/respond", {"payload": GRANTED})
    assert (status, error["code"]) == (409, "state-conflict")
    status, error = await call(http, "POST", f"{answers}/reject", {"code": "late", "text": "no"})
    assert (status, error["code"]) == (409, "state-conflict")
    status, error = await call(http, "POST", f"{base}/requests/nope/respond", {"payload": GRANTED})
    assert (status, error["code"]) == (404, "unknown-message")


async def test_callback_is_retried_until_2xx_and_then_sent_once(
    make_node: MakeNode,
    make_bridge: MakeBridge,
    targets: Callable[..., Awaitable[Target]],
    http: aiohttp.ClientSession,
) -> None:
    """A target answering 500 twice gets the callback on the third try, and never again."""
    provider = await make_node("improvement")

    @provider.handler("tree-felling-permit")
    async def decide(request: IncomingRequest) -> dict[str, Any]:
        return GRANTED

    target = await targets(failures=2)
    bridge, base = await make_bridge("single-center", default_url=target.url)
    body = {"service": "tree-felling-permit", "payload": TREES, "format": "json"}
    _, accepted = await call(http, "POST", f"{base}/requests", body)

    await target.wait_kinds("receipt", "response")

    async def settled() -> bool:
        _, health = await call(http, "GET", f"{base}/health")
        return bool(health["pending_callbacks"] == 0)

    await eventually(settled, what="no pending callbacks")
    await asyncio.sleep(0.5)  # several poll intervals: nothing more may come
    assert [c["kind"] for c in target.attempts] == ["receipt"] * 3 + ["response"]
    assert [c["kind"] for c in target.taken] == ["receipt", "response"]
    assert {c["request_id"] for c in target.taken} == {accepted["message_id"]}
    progress = json.loads(await bridge.node.ctx.store.get_meta(STATE_KEY) or "{}")
    assert progress["done"] == []


async def test_pending_callbacks_survive_a_restart(
    make_node: MakeNode,
    make_bridge: MakeBridge,
    targets: Callable[..., Awaitable[Target]],
    http: aiohttp.ClientSession,
) -> None:
    """Callbacks not yet taken when the bridge and its node stop are delivered after a restart."""
    provider = await make_node("improvement")

    @provider.handler("tree-felling-permit")
    async def decide(request: IncomingRequest) -> dict[str, Any]:
        return GRANTED

    target = await targets(failures=10**6)
    bridge, base = await make_bridge("single-center", default_url=target.url)
    body = {"service": "tree-felling-permit", "payload": TREES, "format": "json"}
    _, accepted = await call(http, "POST", f"{base}/requests", body)
    await bridge.node.wait_answer(accepted["message_id"], timeout=10)

    async def refused_twice() -> bool:
        return len(target.attempts) >= 2

    await eventually(refused_twice, what="failing attempts")
    await bridge.stop()
    await bridge.node.stop()

    target.failures = 0
    node = await make_node("single-center")  # the same store: what was noted is still there
    await make_bridge("single-center", node=node, default_url=target.url)
    taken = await target.wait_kinds("receipt", "response")
    assert {c["request_id"] for c in taken} == {accepted["message_id"]}
    assert taken[1]["payload"] == GRANTED


async def test_undelivered_and_cancel_are_called_back(
    make_bridge: MakeBridge, targets: Callable[..., Awaitable[Target]]
) -> None:
    """An undelivered request goes to the callback URL, a cancel to the requests URL."""
    notices, system = await targets(), await targets()
    bridge, _ = await make_bridge("improvement", default_url=notices.url, requests_url=system.url)
    async with bridge.node.ctx.store.transaction() as tx:  # as the relay and inbound note them
        tx.audit(
            AuditEvent(
                EventName.UNDELIVERED,
                "req-1",
                None,
                "KZN-9",
                "land-plot-info",
                "request",
                detail={"reason": "no receipt before it expired"},
            )
        )
        tx.audit(
            AuditEvent(
                EventName.CANCELLED, "cancel-1", "req-2", None, "tree-felling-permit", "cancel"
            )
        )
    (undelivered,) = await notices.wait_kinds("undelivered")
    (cancel,) = await system.wait_kinds("cancel")
    for callback in (undelivered, cancel):
        conforms("Callback", callback)
    assert (undelivered["request_id"], undelivered["case_id"]) == ("req-1", "KZN-9")
    assert undelivered["reason"] == "no receipt before it expired"
    assert (cancel["request_id"], cancel["callback_id"]) == ("req-2", "cancel-1")


async def test_openapi_document_is_the_committed_file_and_covers_every_route(
    make_bridge: MakeBridge, http: aiohttp.ClientSession
) -> None:
    """GET /openapi.json serves the packaged http-bridge.openapi.json, documenting every route."""
    bridge, base = await make_bridge("single-center")
    status, served = await call(http, "GET", f"{base}/openapi.json")
    assert status == 200
    document = json.loads(OPENAPI.read_text())
    assert served == document
    assert document["openapi"].startswith("3.1")
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in bridge.app().router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert routes == documented
    status, health = await call(http, "GET", f"{base}/health")
    assert status == 200
    conforms("Health", health)


async def test_bearer_token_guards_everything_but_health_and_openapi(
    make_bridge: MakeBridge, http: aiohttp.ClientSession
) -> None:
    """With a token, calls without it are 401; /health and /openapi.json stay open."""
    _, base = await make_bridge("single-center", token="s3cret")
    status, error = await call(http, "GET", f"{base}/requests/any")
    assert (status, error["code"]) == (401, "unauthorized")
    async with http.get(
        f"{base}/requests/any", headers={"Authorization": "Bearer s3cret"}
    ) as response:
        assert response.status == 404
    assert (await call(http, "GET", f"{base}/health"))[0] == 200
    assert (await call(http, "GET", f"{base}/openapi.json"))[0] == 200


async def test_late_answer_is_not_called_back_and_refile_answers_the_case(
    make_node: MakeNode,
    make_bridge: MakeBridge,
    targets: Callable[..., Awaitable[Target]],
    http: aiohttp.ClientSession,
) -> None:
    """After a fault, a late response gets no callback; POST /refile files it anew, answered."""
    provider = await make_node("improvement")
    handled: list[str] = []

    @provider.handler("tree-felling-permit")
    async def second_time_lucky(request: IncomingRequest) -> dict[str, Any]:
        handled.append(request.message_id)
        if len(handled) == 1:
            raise Reject("invalid-content", "the registry was down")
        return GRANTED

    target = await targets()
    bridge, base = await make_bridge("single-center", default_url=target.url)
    body = {"service": "tree-felling-permit", "payload": TREES, "case_id": "KZN-88"}
    status, accepted = await call(http, "POST", f"{base}/requests", body | {"format": "json"})
    assert status == 202, accepted
    request_id = accepted["message_id"]
    await target.wait_kinds("receipt", "fault")

    late = await answer_unchecked(provider, bridge.node, request_id, Kind.RESPONSE, payload=GRANTED)
    await wait_event(bridge.node, "late-answer", late.message_id)
    # Callbacks to one URL go in audit order: once this later one is taken, the late
    # answer's turn has passed.
    async with bridge.node.ctx.store.transaction() as tx:
        tx.audit(AuditEvent(EventName.UNDELIVERED, "req-after", kind="request"))
    await target.wait_kinds("receipt", "fault", "undelivered")
    status, state = await call(http, "GET", f"{base}/requests/{request_id}")
    assert status == 200
    conforms("RequestState", state)
    assert state["state"] == "answered"
    assert [(a["kind"], a.get("late", False)) for a in state["answers"]] == [
        ("receipt", False),
        ("fault", False),
        ("response", True),
    ]

    status, refiled = await call(http, "POST", f"{base}/requests/{request_id}/refile")

    assert status == 202, refiled
    conforms("Refiled", refiled)
    assert refiled["refiles"] == request_id
    assert refiled["message_id"] != request_id
    callbacks = await target.wait_kinds("receipt", "fault", "undelivered", "receipt", "response")
    assert {c["request_id"] for c in callbacks[-2:]} == {refiled["message_id"]}
    assert callbacks[-1]["case_id"] == "KZN-88"
    assert handled == [request_id, refiled["message_id"]]


async def test_refile_of_an_open_request_is_409(
    make_node: MakeNode, make_bridge: MakeBridge, http: aiohttp.ClientSession
) -> None:
    """POST /refile of a request still waiting for its answer is refused with state-conflict."""
    provider = await make_node("improvement")
    handed: asyncio.Queue[str] = asyncio.Queue()
    provider.handler("tree-felling-permit")(later(handed))
    _, base = await make_bridge("single-center")
    body = {"service": "tree-felling-permit", "payload": TREES}
    status, accepted = await call(http, "POST", f"{base}/requests", body)
    assert status == 202, accepted
    assert await asyncio.wait_for(handed.get(), 10) == accepted["message_id"]

    status, refused = await call(http, "POST", f"{base}/requests/{accepted['message_id']}/refile")

    assert status == 409
    conforms("Error", refused)
    assert refused["code"] == "state-conflict"
    assert "still open" in refused["message"]


async def test_a_parked_request_shows_what_it_waits_on(
    make_node: MakeNode, make_bridge: MakeBridge, http: aiohttp.ClientSession
) -> None:
    """GET /requests/{id} of a request whose handler waits names what it waits on."""
    provider = await make_node("improvement")
    _, base = await make_bridge("improvement", node=provider)
    sender = await make_node("single-center")
    question = await provider.request("land-plot-info", {"cadastral_number": "16:50:011105:12"})

    @provider.handler("tree-felling-permit")
    async def waits(_request: IncomingRequest) -> Waiting:
        return Waiting(on=question)

    request_id = await sender.request("tree-felling-permit", TREES, wire_format=WireFormat.JSON)
    await wait_event(provider, "waiting", request_id)
    status, state = await call(http, "GET", f"{base}/requests/{request_id}")

    assert (status, state["state"], state["waiting_on"]) == (200, "received", question)
    conforms("RequestState", state)
    status, asked = await call(http, "GET", f"{base}/requests/{question}")
    assert (status, asked["direction"]) == (200, "sent")
    assert "waiting_on" not in asked
