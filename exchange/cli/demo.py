"""``exchange demo``: the city at work, five departments on the real bus, in under a minute.

It checks that RabbitMQ answers, creates the demo PKI if missing, starts every department's node
in this process with the adapter the catalog names for it (its simulated departmental
system, ``adapters/``; providers first, ``Catalog.start_order``) and the central audit
collector, files a stream of citizens' applications for the five services
at the Single Center, waits for every answer, then prints the trace of a case that crossed
three departments and the deadline report. Runs are isolated by a bus prefix of their own,
so the demo can run again at once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from exchange._clock import SYSTEM_CLOCK
from exchange._logging import configure_logging
from exchange.catalog import Catalog, CatalogData, Role
from exchange.cli._demo_city import CityRun, run_city, service_rows
from exchange.cli._output import certs_dir, console, fail, load_settings, user_errors
from exchange.exceptions import AdapterInvalid
from exchange.node.adapters import load_adapter, load_adapters
from exchange.pki.authority import CertificateAuthority
from exchange.pki.trust import ROOT_FILE
from exchange.transport.addresses import redacted
from exchange.transport.admin import check_broker

if TYPE_CHECKING:
    from exchange.deadlines import SlaReport

FRONT_OFFICE = "single-center"  # the department whose adapter files the citizens' applications


def ensure_demo_pki(authority: CertificateAuthority, catalog: CatalogData) -> list[str]:
    """Create the root CA and a certificate per department and the collector where missing.

    The console's identity is left out: the demo runs no console.
    """
    done: list[str] = []
    if not (authority.path / ROOT_FILE).exists():
        authority.init_ca()
        done.append("created the root CA")
    for party in catalog.parties:
        if party.role is not Role.CONSOLE and not authority.active(party.id):
            authority.issue(party.id)
            done.append(f"issued a certificate for {party.id}")
    authority.write_crl()
    return done


def demo(
    certs: Annotated[
        Path | None, typer.Option("--certs-dir", help="Trust store directory.")
    ] = None,
    applications: Annotated[
        int, typer.Option(min=5, max=500, help="Citizens' applications to file.")
    ] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the stream of applications.")] = 2026,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for every answer.")
    ] = 40.0,
) -> None:
    """Run the city: five departments answer a stream of citizens' applications."""
    started = time.monotonic()
    configure_logging("WARNING")  # the nodes' JSON logs go to stderr, warnings only
    out = console(min_width=120)
    settings = load_settings()
    try:
        asyncio.run(check_broker(settings.amqp_url))
    except Exception as exc:
        raise fail(
            "broker-unavailable",
            f"cannot reach RabbitMQ at {redacted(settings.amqp_url)}: {exc or type(exc).__name__}",
            "start it with `rabbitmq-server -detached`, or point EXCHANGE_AMQP_URL at a "
            "running broker, then run the demo again",
        ) from None
    with user_errors():
        catalog = Catalog.load(settings.catalog, settings.schemas_dir)
        # The adapters first: a missing one stops the demo before anything is created.
        adapters = load_adapters(catalog)
        make_stream = getattr(
            load_adapter(catalog, FRONT_OFFICE).part("applications"), "applications", None
        )
        if not callable(make_stream):
            raise AdapterInvalid(
                f"the adapter of {FRONT_OFFICE} has no applications(count, today=, seed=) in "
                "its applications module: the demo files what it returns",
                party=FRONT_OFFICE,
            )
        authority = CertificateAuthority(certs_dir(certs), SYSTEM_CLOCK)
        for line in ensure_demo_pki(authority, catalog.data):
            out.print(f"[dim]pki:[/dim] {line}")
        settings = settings.model_copy(update={"certs_dir": authority.path})
        stream = make_stream(applications, today=SYSTEM_CLOCK.now().date(), seed=seed)
        out.print(
            f"Filing {len(stream)} citizens' applications at the Single Center "
            f"(five services, XML and JSON envelopes) ..."
        )
        progress = Progress(
            TextColumn("{task.description:<30}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
        )
        with progress:
            run = asyncio.run(
                run_city(settings, catalog, adapters, FRONT_OFFICE, stream, timeout, progress)
            )
    _print_outcomes(out, run)
    _print_trace(out, run)
    _print_deadlines(run.sla)
    out.print(
        f"\nbus prefix {run.names.prefix} removed; stores and the central audit log are in "
        f"{run.run_dir}"
    )
    if run.traced_case:
        out.print(
            f"trace it again: EXCHANGE_AUDIT_PATH={run.central_path} "
            f"exchange trace {run.traced_case}"
        )
    out.print(f"demo finished in {time.monotonic() - started:.1f} s")
    if run.unanswered or run.timeline is None or not run.caught_up:
        if run.unanswered:
            typer.echo(
                f"error demo-incomplete: {len(run.unanswered)} application(s) got no answer "
                f"within {timeout:.0f} s",
                err=True,
            )
        if not run.caught_up:
            typer.echo("error demo-incomplete: the audit collector did not catch up", err=True)
        if run.timeline is None:
            typer.echo("error demo-incomplete: no case crossed three departments", err=True)
        raise typer.Exit(code=1)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _print_outcomes(out: Console, run: CityRun) -> None:
    table = Table(title="Applications by service (the Single Center's view)")
    for column in ("service", "filed", "decisions", "faults", "unanswered", "median s", "max s"):
        table.add_column(column)
    for row in service_rows(run.outcomes):
        table.add_row(
            row["service"],
            str(row["filed"]),
            row["decisions"],
            str(row["faults"]),
            str(row["unanswered"]),
            _seconds(row["median_s"]),
            _seconds(row["max_s"]),
        )
    out.print(table)


def _print_trace(out: Console, run: CityRun) -> None:
    from exchange.cli.audit import print_timeline

    if run.timeline is None or run.traced_case is None:
        out.print("[yellow]no answered case crossed three departments[/yellow]")
        return
    parties: list[str] = []
    for step in run.timeline.steps:
        if step.party not in parties:
            parties.append(step.party)
    route = " -> ".join(parties)
    out.print(f"\nCase {run.traced_case} crossed {len(parties)} departments: {route}")
    print_timeline(run.timeline.to_json(), f"Trace of {run.traced_case}")


def _print_deadlines(report: SlaReport | None) -> None:
    from exchange.cli.services import deadline_text

    if report is None:
        return
    table = Table(
        title="Deadline report: turnaround per service against its regulated deadline",
        caption="days in the deadline's unit, by exchange.deadlines from the providers' stores",
    )
    for column in ("provider", "service", "deadline", "answered", "median days", "p90 days"):
        table.add_column(column)
    for column in ("on time", "open", "overdue"):
        table.add_column(column)
    for row in report.turnaround:
        share = row.on_time_share
        table.add_row(
            row.party,
            row.service,
            deadline_text(row.deadline),
            str(row.answered),
            "—" if row.median_days is None else f"{row.median_days:.1f}",
            "—" if row.p90_days is None else f"{row.p90_days:.1f}",
            "—" if share is None else f"{share:.0%}",
            str(row.open),
            str(row.overdue),
        )
    console(min_width=160).print(table)
