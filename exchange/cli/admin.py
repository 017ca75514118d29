"""``exchange admin``: signed admin commands, sent with the console's key."""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer

from exchange._clock import SYSTEM_CLOCK
from exchange._logging import configure_logging
from exchange.admin import AdminClient
from exchange.catalog import Role, read_catalog_data
from exchange.cli._output import console, load_settings, print_json, user_errors
from exchange.config import Settings
from exchange.pki.authority import CertificateAuthority
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames

app = typer.Typer(
    help="Admin commands to a party's node, signed as the console.", no_args_is_help=True
)


@app.command("replay")
def replay(
    party: Annotated[str, typer.Argument(help="The party whose request to replay.")],
    message_id: Annotated[str, typer.Argument(help="The request's message id.")],
    actor: Annotated[
        str | None, typer.Option(help="Who asks (audited); the login name by default.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Ask PARTY's node to replay request MESSAGE_ID; print the command's id.

    The node decides under its own rules and audits the command and its outcome
    (`replayed`, or `replay-refused` with a code: `already-final` where a final answer was
    sent, `state-conflict` while it is open, `unknown-message`). Only a request the broker
    dead-lettered before it was stored can be replayed.
    """
    configure_logging("WARNING")
    settings = load_settings()
    with user_errors():
        bus, client = admin_client(settings)
        command_id = asyncio.run(_send(bus, client, party, message_id, actor or getpass.getuser()))
    if as_json:
        print_json({"command_id": command_id, "party": party, "message_id": message_id})
        return
    console().print(
        f"sent replay command {command_id} to {party}; its outcome is in {party}'s audit log "
        f"(`exchange trace {message_id}`)"
    )


def admin_client(settings: Settings) -> tuple[Bus, AdminClient]:
    """A bus (not started) and an admin client signing with the catalog's console identity.

    Raises:
        CatalogError, ExchangeError: no console in the catalog, or its credentials unreadable.
    """
    catalog = read_catalog_data(settings.catalog)
    me = next((p.id for p in catalog.parties if p.role is Role.CONSOLE), None)
    if me is None:
        raise typer.BadParameter("the catalog lists no party with role console")
    credentials = CertificateAuthority(settings.certs_dir, SYSTEM_CLOCK).credentials(me)
    bus = Bus(settings.amqp_url)
    return bus, AdminClient(bus, BusNames(settings.bus_prefix), credentials)


async def _send(bus: Bus, client: AdminClient, party: str, message_id: str, actor: str) -> str:
    await bus.start()
    try:
        return await client.replay(party, message_id, actor)
    finally:
        await bus.stop()
