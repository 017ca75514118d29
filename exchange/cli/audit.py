"""``exchange audit`` (collect, verify, export, check-bundle) and ``exchange trace``."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from exchange._clock import SYSTEM_CLOCK
from exchange._logging import configure_logging
from exchange.attachments.store import AttachmentStore
from exchange.audit.ack import open_ack
from exchange.audit.central import CentralStore, open_central
from exchange.audit.collector import Collector
from exchange.audit.config import AuditSettings
from exchange.audit.trace import TraceFilter, trace
from exchange.audit.verify import PartyReport, check_central_head, verify_central, verify_party
from exchange.catalog import Role, read_catalog_data
from exchange.cli._output import (
    CertsDirOption,
    certs_dir,
    console,
    fail,
    load_audit_settings,
    load_settings,
    print_json,
    user_errors,
)
from exchange.cli._serving import announce_ready, stop_on_signal
from exchange.config import Settings
from exchange.evidence.bundle import check_bundle, export_bundle
from exchange.exceptions import StoreError
from exchange.ledger.event import EventName
from exchange.node.factory import attachment_store, open_store
from exchange.node.store.base import Store
from exchange.observe import Observer, observe_collector
from exchange.pki.authority import CertificateAuthority
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from exchange.transport.users import COLLECTOR

app = typer.Typer(help="The audit log: collect, verify, export evidence.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("collect")
def collect() -> None:
    """Run the central collector until SIGTERM or Ctrl-C; prints `ready collector`."""
    configure_logging(load_settings().log_level)
    settings = load_settings()
    with user_errors():
        trust = TrustStore.from_dir(settings.certs_dir)
        catalog = read_catalog_data(settings.catalog)
        me = next((p.id for p in catalog.parties if p.role is Role.COLLECTOR), COLLECTOR)
        collector = Collector(
            Bus(settings.amqp_url),
            BusNames(settings.bus_prefix),
            open_central(load_audit_settings()),
            trust,
            SYSTEM_CLOCK,
            CertificateAuthority(settings.certs_dir, SYSTEM_CLOCK).credentials(me),
            archive=catalog.archive_mode,
        )
        observer = None
        if settings.metrics_port is not None:
            observer = observe_collector(
                collector, me, settings.metrics_host, settings.metrics_port
            )
        asyncio.run(_collect(collector, observer))


async def _collect(collector: Collector, observer: Observer | None) -> None:
    stop = stop_on_signal()
    await collector.start()
    try:
        if observer is not None:
            await observer.start()
        announce_ready("collector")
        await stop.wait()
    finally:
        if observer is not None:
            await observer.stop()
        await collector.stop()


@app.command("verify")
def verify(
    party: Annotated[str | None, typer.Option(help="Only this party's chain.")] = None,
    local: Annotated[
        bool, typer.Option(help="Verify the party's own store instead of the central one.")
    ] = False,
    certs: CertsDirOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk the chains and checkpoints; name the first bad record of each party (exit 1)."""
    with user_errors():
        trust = TrustStore.from_dir(certs_dir(certs))
        if local:
            if party is None:
                raise typer.BadParameter("--local needs --party")
            reports = [asyncio.run(_verify_local(party, trust))]
        else:
            reports = asyncio.run(
                _verify_central(open_central(load_audit_settings()), party, trust)
            )
    rows = [_report_json(r) for r in reports]
    if as_json:
        print_json(rows)
    else:
        table = Table(title="Audit chains")
        for column in ("party", "records", "last seq", "checkpoints", "gaps", "result"):
            table.add_column(column)
        for row in rows:
            gaps = ", ".join(f"{a}..{b}" for a, b in row["gaps"]) or "-"
            result = "ok" if row["ok"] else f"TAMPERED: {row['first_problem']['message']}"
            table.add_row(
                row["party"],
                str(row["records"]),
                str(row["last_seq"]),
                str(row["checkpoints"]),
                gaps,
                result,
            )
        console(min_width=120).print(table)
    if not all(r.ok for r in reports):
        raise typer.Exit(code=1)


def _report_json(report: PartyReport) -> dict[str, Any]:
    first = report.first_problem
    return {
        "party": report.party,
        "ok": report.ok,
        "records": report.records,
        "last_seq": report.last_seq,
        "checkpoints": report.checkpoints,
        "gaps": [list(g) for g in report.gaps],
        "first_problem": None
        if first is None
        else {"code": first.code, "seq": first.data.get("seq"), "message": first.message},
        "problems": [
            {"code": p.code, "seq": p.data.get("seq"), "message": p.message}
            for p in report.problems
        ],
    }


async def _verify_central(
    store: CentralStore, party: str | None, trust: TrustStore
) -> list[PartyReport]:
    catalog = read_catalog_data(load_settings().catalog)
    departments = [p.id for p in catalog.parties if p.is_department]
    collector = next((p.id for p in catalog.parties if p.role is Role.COLLECTOR), COLLECTOR)
    await store.open()
    try:
        return await verify_central(store, trust, departments, collector, party)
    finally:
        await store.close()


async def _verify_local(party: str, trust: TrustStore) -> PartyReport:
    settings = load_settings()
    catalog = read_catalog_data(settings.catalog)
    collector = next((p.id for p in catalog.parties if p.role is Role.COLLECTOR), COLLECTOR)
    central = await _central_heads(party, collector)
    store = open_store(party, settings, SYSTEM_CLOCK)
    await store.open()
    try:

        async def fetch(since: int, limit: int) -> Any:
            return await store.audit(since, limit)

        held = await store.acks(limit=1_000_000)
        # Each was verified when it was stored; verified again, so a planted one counts not.
        acks = [open_ack(body, trust, collector, party) for _, body in held]
        newest = max(acks, key=lambda ack: ack.seq, default=None)
        bodies = [body for _, body in await store.checkpoints(limit=1_000_000)]
        # The central head is the witness of a tail cut here together with its
        # acknowledgment; the acknowledgment is the witness when the central log is away,
        # and of a central tail cut together with the collector's chain.
        head = central[0] if central else None
        acked = newest.seq if newest else 0
        report = await verify_party(party, fetch, bodies, trust, head=head, acknowledged=acked)
        if central:
            check_central_head(report, newest, head, collector, central[1])
        return report
    finally:
        await store.close()


Head = tuple[int, str] | None


async def _central_heads(party: str, collector: str) -> tuple[Head, Head] | None:
    """The central log's heads of ``party`` and of the collector's own chain (None: it holds
    nothing of that chain), or None where the central log is not reachable."""
    audit = load_audit_settings()
    if not audit.dsn and not audit.path.exists():
        return None  # no central log on this machine: opening would create an empty one
    central = open_central(audit)
    try:
        await central.open()
    except StoreError:
        return None
    try:
        return await central.head(party), await central.head(collector)
    finally:
        await central.close()


@app.command("export")
def export(
    ident: Annotated[str, typer.Argument(help="A message id or a case id.")],
    out: Annotated[Path, typer.Option(help="Where to write the bundle (JSON).")],
    with_files: Annotated[
        bool,
        typer.Option(
            "--with-files",
            help="Copy the attachments into <out>.files/ by SHA-256 (else only their hashes).",
        ),
    ] = False,
) -> None:
    """Write the evidence bundle of a message or case: envelopes, attachment hashes (and with
    --with-files the files), records, chain proof."""
    files = _files_dir(out) if with_files else None
    with user_errors():
        bundle = asyncio.run(_export(ident, files))
        out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False), encoding="utf-8")
    pruned = [p["message_id"] for p in bundle["pruned"]]
    console().print(
        f"wrote {out}: {len(bundle['envelopes'])} envelope(s), "
        f"chains of {', '.join(bundle['chains'])}"
        + (f"; content pruned (not in the bundle): {', '.join(pruned)}" if pruned else "")
    )


def _files_dir(bundle: Path) -> Path:
    """Where a bundle's attachment files go: ``<bundle>.files`` beside it."""
    return bundle.with_name(bundle.name + ".files")


async def _export(ident: str, files: Path | None = None) -> dict[str, Any]:
    settings = load_settings()
    central = open_central(load_audit_settings())
    await central.open()
    stores: dict[str, Store] = {}
    attachments: dict[str, AttachmentStore] = {}
    try:
        for party in await central.parties():
            if settings.store_dsn or (settings.store_dir / f"{party}.db").exists():
                store = open_store(party, settings, SYSTEM_CLOCK)
                await store.open()
                stores[party] = store
            if (settings.store_dir / f"{party}.attachments").is_dir():
                attachments[party] = attachment_store(party, settings)
        return await export_bundle(
            central,
            ident,
            stores,
            SYSTEM_CLOCK.now(),
            attachment_stores=attachments,
            files=files,
        )
    finally:
        for store in stores.values():
            await store.close()
        await central.close()


@app.command("check-bundle")
def check_bundle_command(
    bundle: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A bundle file.")],
    certs: CertsDirOption = None,
    as_json: JsonOpt = False,
    files: Annotated[
        Path | None,
        typer.Option(
            help="The attachment files folder to check (default: <bundle>.files if it exists)."
        ),
    ] = None,
) -> None:
    """Verify an evidence bundle offline with only the trust store (and its attachment files:
    each one's size and SHA-256 against its signed envelope)."""
    folder = files or (_files_dir(bundle) if _files_dir(bundle).is_dir() else None)
    with user_errors():
        report = check_bundle(
            bundle.read_bytes(), TrustStore.from_dir(certs_dir(certs)), files=folder
        )
    result = {
        "ok": True,
        "query": report.query,
        "envelopes": report.envelopes,
        "records": report.records,
        "parties": report.parties,
        "not_yet_checkpointed": report.unanchored,
        "content_pruned": report.pruned,
        "attachments": report.attachments,
        "attachment_files_checked": report.attachment_files,
    }
    if as_json:
        print_json(result)
        return
    console().print(
        f"bundle ok: {report.envelopes} envelope(s) verified, {report.records} record(s) of "
        f"{', '.join(report.parties)} chained"
        + (
            f"; {report.attachments} attachment(s) bound, {report.attachment_files} file(s) checked"
            if report.attachments
            else ""
        )
        + (f"; not yet checkpointed: {', '.join(report.unanchored)}" if report.unanchored else "")
        + (f"; content pruned: {', '.join(report.pruned)}" if report.pruned else "")
    )


@app.command("prune")
def prune(
    party: Annotated[str, typer.Argument(help="The party whose message log to prune.")],
    days: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Prune finished messages older than N days (default: 0 with "
            "EXCHANGE_METADATA_ONLY, else EXCHANGE_MESSAGE_RETENTION_DAYS).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Empty the content (wire bytes) of finished messages; digests and audit chain stay."""
    settings = load_settings()
    if days is None:
        days = 0 if settings.metadata_only else settings.message_retention_days
    if days is None:
        raise typer.BadParameter("give --days N or set EXCHANGE_MESSAGE_RETENTION_DAYS")
    if not settings.store_dsn and not (settings.store_dir / f"{party}.db").exists():
        raise typer.BadParameter(f"{party} has no store in {settings.store_dir}")
    older_than = SYSTEM_CLOCK.now() - timedelta(days=days)
    with user_errors():
        pruned = asyncio.run(_prune(party, settings, older_than))
    if as_json:
        print_json({"party": party, "older_than": older_than.isoformat(), "pruned": pruned})
        return
    console().print(
        f"{party}: content of {pruned} finished message(s) older than {days} day(s) pruned; "
        "digests and the audit chain kept"
    )


async def _prune(party: str, settings: Settings, older_than: datetime) -> int:
    store = open_store(party, settings, SYSTEM_CLOCK)
    await store.open()
    try:
        return await store.prune_messages(older_than)
    finally:
        await store.close()


def trace_command(
    ident: Annotated[str, typer.Argument(help="A message id or a case id.")],
    party: Annotated[str | None, typer.Option(help="Only steps of this party.")] = None,
    service: Annotated[str | None, typer.Option(help="Only steps of this service.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this event (e.g. received).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only steps at or after (ISO).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Only steps at or before (ISO).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A timeline across all parties of a message or a case, with time waited per department."""
    filters = TraceFilter(party, service, status, _aware(since), _aware(until))
    with user_errors():
        timeline = asyncio.run(_trace(ident, filters))
    doc = timeline.to_json()
    if not doc["steps"]:
        # An empty table with exit 0 reads as "nothing happened to it", not "no such id".
        raise fail(
            "unknown-message",
            f"{ident} not found in the central audit log"
            + (" (or no step matches the filters)" if filters != TraceFilter() else ""),
            "give a message id or a case id as `exchange send` prints it; the log is the "
            "collector's (EXCHANGE_AUDIT_PATH or EXCHANGE_AUDIT_DSN), so `exchange audit "
            "collect` must have run since the request was sent",
        )
    if as_json:
        print_json(doc)
        return
    print_timeline(doc, f"Trace of {ident}")


def print_timeline(doc: dict[str, Any], title: str) -> None:
    """Print a trace (``Timeline.to_json()``) as ``exchange trace`` shows it: steps, waits."""
    table = Table(title=title)
    for column in ("time", "party", "event", "kind", "message", "service"):
        table.add_column(column)
    for step in doc["steps"]:
        table.add_row(
            step["at"], step["party"], _event_text(step), step["kind"] or "",
            step["message_id"] or "", step["service"] or "",
        )  # fmt: skip
    out = console(min_width=160)
    out.print(table)
    for wait in doc["waiting"]:
        state = "still open" if wait["open"] else "answered"
        out.print(
            f"waiting on {wait['party']}: {wait['seconds']:.3f} s "
            f"({wait['service']}, request {wait['request_id']}, {state})"
        )


def _event_text(step: dict[str, Any]) -> str:
    """The event, with what a waiting request waits on (a request id, or the broker)."""
    on = step["detail"].get("on") if step["event"] in _WAIT_EVENTS else None
    return f"{step['event']} on {on}" if on else str(step["event"])


_WAIT_EVENTS = (EventName.WAITING, EventName.RESUMED)


async def _trace(ident: str, filters: TraceFilter) -> Any:
    store = open_central(load_audit_settings())
    await store.open()
    try:
        return await trace(store, ident, SYSTEM_CLOCK.now(), filters)
    finally:
        await store.close()


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.astimezone()


__all__ = ["AuditSettings", "app", "print_timeline", "trace_command"]
