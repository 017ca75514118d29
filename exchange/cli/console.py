"""``exchange console``: serve the support console, and manage its users."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer
from aiohttp import web
from pydantic import ValidationError

from exchange._clock import SYSTEM_CLOCK
from exchange._logging import configure_logging
from exchange.admin import AdminClient
from exchange.audit.central import open_central
from exchange.audit.feed import CentralFeed
from exchange.catalog import Catalog
from exchange.cli._output import console, fail, load_audit_settings, load_settings, user_errors
from exchange.cli._serving import announce_ready, stop_on_signal
from exchange.cli.admin import admin_client
from exchange.config import Settings, describe_settings_error
from exchange.console import ConsoleSettings, Role, UsersFile, create_app
from exchange.exceptions import ExchangeError, UsersFileInvalid
from exchange.observe.health import broker_check
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames

log = structlog.get_logger("exchange.console")

app = typer.Typer(help="The support console: a web UI over the central audit log.")
user_app = typer.Typer(help="The console's users (support reads, admin also replays).")
app.add_typer(user_app, name="user")


def load_console_settings() -> ConsoleSettings:
    """The ``EXCHANGE_CONSOLE_*`` settings, or exit 1 with ``config-error``."""
    try:
        return ConsoleSettings()
    except ValidationError as exc:
        raise fail("config-error", describe_settings_error(exc, "EXCHANGE_CONSOLE_")) from None


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the console until SIGTERM or Ctrl-C; prints `ready console`."""
    settings = load_settings()
    configure_logging(settings.log_level)
    options = load_console_settings()
    options = options.model_copy(
        update={"host": host or options.host, "port": port or options.port}
    )
    with user_errors():
        if not UsersFile(options.users).load():
            raise UsersFileInvalid(
                f"no console users in {options.users}: add one with "
                "`exchange console user add NAME --role admin` (there is no default user)"
            )
        catalog = Catalog.load(settings.catalog, settings.schemas_dir)
        trust = TrustStore.from_dir(settings.certs_dir)
        names = BusNames(settings.bus_prefix)
        feed = CentralFeed(settings.amqp_url, names, trust)
        admin = _replayer(settings)
        asyncio.run(_serve(options, catalog, settings.certs_dir, names, feed, admin))


def _replayer(settings: Settings) -> tuple[Bus, AdminClient] | None:
    """The console's admin client, or None (a read-only console) without its identity."""
    try:
        return admin_client(settings)
    except (ExchangeError, typer.BadParameter) as exc:
        message = exc.message if isinstance(exc, ExchangeError) else str(exc)
        log.warning("console.replay_unavailable", reason=message)
        return None


async def _serve(
    options: ConsoleSettings,
    catalog: Catalog,
    certs_dir: Path,
    names: BusNames,
    feed: CentralFeed,
    admin: tuple[Bus, AdminClient] | None,
) -> None:
    central = open_central(load_audit_settings())
    await central.open()
    runner: web.AppRunner | None = None
    try:
        replayer, checks = None, {}
        if admin is not None:
            await admin[0].start()  # admin commands (replay) travel on it, signed as the console
            replayer, checks = admin[1], {"broker": broker_check(admin[0])}
        application = create_app(
            central,
            catalog,
            certs_dir,
            SYSTEM_CLOCK,
            options,
            feed=feed,
            replayer=replayer,
            names=names,
            checks=checks,
        )
        runner = web.AppRunner(application)
        await runner.setup()
        await web.TCPSite(runner, options.host, options.port).start()
        stop = stop_on_signal()
        announce_ready(f"console http://{options.host}:{options.port}/")
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        if admin is not None:
            await admin[0].stop()
        await central.close()


@user_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[Role, typer.Option(help="support (read-only) or admin.")],
) -> None:
    """Add a user (or set a new password); the password is read from a prompt or stdin."""
    options = load_console_settings()
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    with user_errors():
        UsersFile(options.users).add(name, role, password)
    console().print(f"user {name} ({role.value}) saved in {options.users}")
