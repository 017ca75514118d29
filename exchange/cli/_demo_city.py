"""The city the demo runs: five departments' nodes, the audit collector, a stream of cases.

Everything lives under a bus prefix and a run directory of its own (``<store dir>/demo/
run-<id>/``), so a run never sees an earlier run's messages; the run's queues are deleted
when it ends, its stores and central audit log are kept for ``exchange trace`` (the three
newest runs are kept). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from exchange._clock import SYSTEM_CLOCK
from exchange.audit.central import SQLiteCentralStore
from exchange.audit.collector import Collector
from exchange.audit.trace import Timeline, trace
from exchange.catalog import Catalog, Role
from exchange.config import Settings
from exchange.node import Node, build_node
from exchange.node.adapters import Adapter
from exchange.node.factory import open_store
from exchange.pki.authority import CertificateAuthority
from exchange.pki.trust import TrustStore
from exchange.transport.admin import drop_topology
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames

if TYPE_CHECKING:
    from rich.progress import Progress

    from exchange.attachments import Outgoing
    from exchange.deadlines import SlaReport
    from exchange.signing import WireFormat


class Application(Protocol):
    """A citizen's application as the front office's adapter makes them (``applications``)."""

    @property
    def service(self) -> str:
        """The citizen service's code."""

    @property
    def payload(self) -> dict[str, Any]:
        """The request's payload."""

    @property
    def case_id(self) -> str:
        """The citizen's application number."""

    @property
    def wire_format(self) -> WireFormat:
        """The envelope format it is filed in."""

    def attachments(self) -> list[Outgoing]:
        """The documents the citizen brought, as the SDK takes them."""

    @property
    def asks_another_department(self) -> bool:
        """Whether its provider asks another department before it decides."""


KEEP_RUNS = 3  # run directories kept under <store dir>/demo (the newest)
STREAM_PACE = 0.08  # seconds between two applications at the front office
CATCH_UP_SECONDS = 15.0  # how long the collector may take to hold every node's chain


@dataclass(slots=True)
class Outcome:
    """What became of one citizen's application, as the Single Center's store has it."""

    application: Application
    request_id: str
    kind: str  # response, fault, undelivered, or timeout (no answer within the demo's time)
    decision: str | None = None
    fault_code: str | None = None
    seconds: float | None = None  # from filing (outbox) to the answer (inbox)


@dataclass(slots=True)
class CityRun:
    """A finished run: outcomes, the traced case, the deadline report, where things are."""

    run_id: str
    names: BusNames
    run_dir: Path
    outcomes: list[Outcome] = field(default_factory=list)
    traced_case: str | None = None
    timeline: Timeline | None = None
    sla: SlaReport | None = None
    caught_up: bool = False

    @property
    def central_path(self) -> Path:
        """The run's central audit store (SQLite), for ``EXCHANGE_AUDIT_PATH``."""
        return self.run_dir / "audit-central.db"

    @property
    def unanswered(self) -> list[Outcome]:
        """Applications that got no response or fault in time."""
        return [o for o in self.outcomes if o.kind not in ("response", "fault")]


def run_directory(base: Path, run_id: str) -> Path:
    """A fresh ``run-<id>`` directory under ``base``; older runs beyond the newest few go."""
    base.mkdir(parents=True, exist_ok=True)
    runs = sorted(base.glob("run-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[KEEP_RUNS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
    path = base / f"run-{run_id}"
    path.mkdir()
    return path


async def run_city(
    settings: Settings,
    catalog: Catalog,
    adapters: Sequence[Adapter],
    front_office: str,
    stream: Sequence[Application],
    timeout: float,
    progress: Progress,
) -> CityRun:
    """Start the city (``adapters`` in order), file ``stream`` at ``front_office``, trace a
    case, report deadlines."""
    run_id = uuid.uuid4().hex[:8]
    names = BusNames(f"{settings.bus_prefix}demo-{run_id}.")
    run = CityRun(run_id, names, run_directory(settings.store_dir / "demo", run_id))
    city = settings.model_copy(
        update={"bus_prefix": names.prefix, "store_dir": run.run_dir / "stores", "store_dsn": None}
    )
    central = SQLiteCentralStore(run.central_path)
    trust = TrustStore.from_dir(city.certs_dir)
    me = catalog.identity(Role.COLLECTOR).id
    credentials = CertificateAuthority(city.certs_dir, SYSTEM_CLOCK).credentials(me)
    collector = Collector(
        Bus(city.amqp_url),
        names,
        central,
        trust,
        SYSTEM_CLOCK,
        credentials,
        archive=catalog.data.archive_mode,
    )
    nodes: dict[str, Node] = {}
    try:
        await collector.start()
        try:
            for adapter in adapters:
                node = build_node(
                    adapter.party, city, config=adapter.config.node_config(), catalog=catalog
                )
                adapter.register(node)
                await node.start()
                nodes[adapter.party] = node
            front = nodes[front_office]
            run.outcomes = await _file(front, stream, timeout, progress)
            await _measure(front, run.outcomes)
            run.sla = await _deadline_report(
                [n for p, n in nodes.items() if p != front_office], catalog
            )
        finally:
            for node in reversed(list(nodes.values())):
                await node.stop()  # each signs a checkpoint at its head and ships the rest
        run.caught_up = await _caught_up(city, central, list(nodes))
        run.traced_case, run.timeline = await _three_department_case(central, run.outcomes)
    finally:
        await collector.stop()
        await drop_topology(city.amqp_url, names, [p.id for p in catalog.parties])
    return run


async def _file(
    front: Node, stream: Sequence[Application], timeout: float, progress: Progress
) -> list[Outcome]:
    """File every application as a stream; wait for each answer until the demo's deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    filed = progress.add_task("filed at the Single Center", total=len(stream))
    answered = progress.add_task("answered by the departments", total=len(stream))

    async def one(index: int, application: Application) -> Outcome:
        await asyncio.sleep(index * STREAM_PACE)
        request_id = await front.request(
            application.service,
            application.payload,
            case_id=application.case_id,
            wire_format=application.wire_format,
            attachments=application.attachments(),
        )
        progress.advance(filed)
        outcome = Outcome(application, request_id, "timeout")
        try:
            notice = await front.wait_answer(request_id, max(deadline - loop.time(), 0.1))
        except TimeoutError:
            return outcome
        outcome.kind = notice.kind
        if notice.envelope is not None:
            decision = (notice.envelope.payload or {}).get("decision")
            outcome.decision = decision if isinstance(decision, str) else None
            if notice.envelope.fault is not None:
                outcome.fault_code = notice.envelope.fault.code
        progress.advance(answered)
        return outcome

    return list(await asyncio.gather(*(one(i, a) for i, a in enumerate(stream))))


async def _measure(front: Node, outcomes: list[Outcome]) -> None:
    """Each answered application's turnaround from the Single Center's store."""
    store = front.ctx.store
    for outcome in outcomes:
        sent = await store.get_outbox(outcome.request_id)
        answers = [
            record.received_at
            for record in await store.inbox_for(outcome.request_id)
            if record.kind in ("response", "fault")
        ]
        if sent is not None and answers:
            outcome.seconds = (min(answers) - sent.created_at).total_seconds()


async def _deadline_report(providers: list[Node], catalog: Catalog) -> SlaReport:
    """``exchange.deadlines``' report over the providers' stores (still open)."""
    from exchange.deadlines import sla_report

    return await sla_report([node.ctx.store for node in providers], catalog, SYSTEM_CLOCK)


async def _caught_up(settings: Settings, central: SQLiteCentralStore, parties: list[str]) -> bool:
    """Wait (bounded) until the collector holds every node's chain up to its head."""
    heads: dict[str, int] = {}
    for party in parties:
        store = open_store(party, settings, SYSTEM_CLOCK)
        await store.open()
        try:
            head = await store.audit_head()
            heads[party] = head[0] if head else 0
        finally:
            await store.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CATCH_UP_SECONDS
    while True:
        held = {party: await central.head(party) for party in parties}
        if all(heads[p] == 0 or (h is not None and h[0] >= heads[p]) for p, h in held.items()):
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)


async def _three_department_case(
    central: SQLiteCentralStore, outcomes: list[Outcome]
) -> tuple[str | None, Timeline | None]:
    """The first answered case that crossed three departments, and its timeline."""
    candidates = sorted(
        (o for o in outcomes if o.kind == "response" and o.application.asks_another_department),
        key=lambda o: o.application.service != "tree-felling-permit",
    )
    for outcome in candidates[:5]:
        case_id = outcome.application.case_id
        timeline = await trace(central, case_id, SYSTEM_CLOCK.now())
        if len({step.party for step in timeline.steps}) >= 3:
            return case_id, timeline
    return None, None


def service_rows(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """Per service: how many were filed, the decisions, faults, turnaround in seconds."""
    rows: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        row = rows.setdefault(
            outcome.application.service,
            {"filed": 0, "decisions": {}, "faults": 0, "unanswered": 0, "seconds": []},
        )
        row["filed"] += 1
        if outcome.kind == "response":
            decisions: dict[str, int] = row["decisions"]
            key = outcome.decision or "answered"
            decisions[key] = decisions.get(key, 0) + 1
        elif outcome.kind == "fault":
            row["faults"] += 1
        else:
            row["unanswered"] += 1
        if outcome.seconds is not None:
            row["seconds"].append(outcome.seconds)
    result = []
    for service, row in rows.items():
        seconds: list[float] = row["seconds"]
        result.append(
            {
                "service": service,
                "filed": row["filed"],
                "decisions": ", ".join(f"{n} {d}" for d, n in sorted(row["decisions"].items())),
                "faults": row["faults"],
                "unanswered": row["unanswered"],
                "median_s": statistics.median(seconds) if seconds else None,
                "max_s": max(seconds) if seconds else None,
            }
        )
    return result
