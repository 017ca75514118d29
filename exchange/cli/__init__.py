"""The ``exchange`` command line: certificate administration, signing and verification."""

from __future__ import annotations

import typer

from exchange.cli import audit, bridges, bus, certs, demo, envelopes, services, sla, status

__all__ = ["app", "main"]

app = typer.Typer(
    name="exchange",
    help="Kazan inter-agency exchange: certificates, signing and verification of envelopes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(certs.app, name="certs")
app.command("sign")(envelopes.sign)
app.command("verify")(envelopes.verify)
app.command("demo")(demo.demo)
app.add_typer(bus.topology_app, name="topology")
app.add_typer(bus.node_app, name="node")
app.add_typer(bus.dlq_app, name="dlq")
app.command("send")(bus.send)
app.add_typer(audit.app, name="audit")
app.command("trace")(audit.trace_command)
app.command("status")(status.status)
app.add_typer(services.app, name="services")
app.command("sla")(sla.sla)
app.add_typer(bridges.app, name="bridge")


def main() -> None:
    """Run the ``exchange`` command line."""
    app()
