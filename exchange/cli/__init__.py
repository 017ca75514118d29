"""The ``exchange`` command line: every command of admins, integrators and support."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from exchange.cli import (
    admin,
    audit,
    bridges,
    bus,
    certs,
    demo,
    envelopes,
    probe,
    services,
    sla,
    status,
)
from exchange.cli import console as console_cli
from exchange.cli._help import hide_flag_types

__all__ = ["app", "main"]

HELP = """Kazan inter-agency exchange: signed requests between the city's departments.

Admins: `certs` (root CA, certificates, CRL), `topology` (the broker's queues and users),
`audit` (collect, verify, export evidence). Departments and integrators: `node run` (a
party's node with its handlers), `send`, `status`, `bridge` (HTTP and folder connectors for
departmental systems), `sign` and `verify` (envelope files), `services` (the catalog).
Support: `trace` (a message or case across departments), `dlq` (dead letters), `admin
replay` (a signed replay command to a party's node), `sla` (deadlines), `console` (all of it
in a browser). Operations: `probe` (a node's or the collector's /ready, for healthchecks;
docs/operations.md). `demo` runs the whole city in one process. Settings come from
EXCHANGE_* variables (docs/configuration.md).
"""

hide_flag_types()
app = typer.Typer(
    name="exchange",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version() -> str:
    try:
        return version("kazan-exchange")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"exchange {_version()}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Kazan inter-agency exchange."""


app.add_typer(certs.app, name="certs")
app.command("sign")(envelopes.sign)
app.command("verify")(envelopes.verify)
app.command("demo")(demo.demo)
app.add_typer(bus.topology_app, name="topology")
app.add_typer(bus.node_app, name="node")
app.add_typer(bus.dlq_app, name="dlq")
app.add_typer(admin.app, name="admin")
app.command("send")(bus.send)
app.add_typer(audit.app, name="audit")
app.command("trace")(audit.trace_command)
app.command("status")(status.status)
app.add_typer(services.app, name="services")
app.command("sla")(sla.sla)
app.add_typer(bridges.app, name="bridge")
app.command("probe")(probe.probe)
app.add_typer(console_cli.app, name="console")


def main() -> None:
    """Run the ``exchange`` command line."""
    app()
