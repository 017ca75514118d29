"""``exchange topology``, ``exchange node``, ``exchange send`` and ``exchange dlq``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from exchange._clock import SYSTEM_CLOCK
from exchange._hazmat.xml import parse
from exchange._logging import configure_logging
from exchange.catalog import Catalog
from exchange.cli._output import console, fail, load_settings, print_json, user_errors
from exchange.cli._serving import announce_ready, stop_on_signal
from exchange.codec.json import loads_strict
from exchange.codec.xml import payload_from_element
from exchange.envelope.model import Kind
from exchange.exceptions import (
    AlreadyFinal,
    Malformed,
    StateConflict,
    UnknownMessage,
)
from exchange.node import Node, build_node
from exchange.node.adapters import load_adapter
from exchange.node.factory import open_store
from exchange.node.store.base import OPEN_INBOX, InboxRecord, InboxState, Store
from exchange.observe import node_companions
from exchange.signing import WireFormat
from exchange.transport.admin import dead_letters
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames
from exchange.transport.users import apply_grants, grants, url_for, vhost_of

topology_app = typer.Typer(help="The broker's exchanges and queues.", no_args_is_help=True)
node_app = typer.Typer(help="Run a party's node.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: look at them and replay them.", no_args_is_help=True)

PartyArg = Annotated[str, typer.Argument(help="Party id, e.g. improvement.")]


@topology_app.command("apply")
def topology_apply() -> None:
    """Declare every exchange and queue of the catalog's parties (idempotent)."""
    settings = load_settings()
    configure_logging("WARNING")  # reconnect warnings as JSON lines, not raw library text
    with user_errors():
        catalog = Catalog.load(settings.catalog, settings.schemas_dir)
        parties = [party.id for party in catalog.parties]
        names = BusNames(settings.bus_prefix)
        asyncio.run(_apply(settings.amqp_url, names, parties))
    table = Table(title="Topology applied")
    table.add_column("party")
    table.add_column("inbox")
    table.add_column("dead letters")
    for party in parties:
        table.add_row(party, names.inbox(party), names.dead_letters(party))
    console().print(table)


async def _apply(url: str, names: BusNames, parties: list[str]) -> None:
    bus = Bus(url)
    bus.declare_on_connect(names, parties)
    await bus.start()
    await bus.stop()


@topology_app.command("users")
def topology_users(
    out: Annotated[
        Path, typer.Option(file_okay=False, help="Where to write each user's AMQP URL (0600).")
    ],
) -> None:
    """Create a least-privilege broker user per party (and the collector's) with rabbitmqctl.

    Each party may read only its inbox and dead letters and publish only to the bus; run its
    node with that URL and EXCHANGE_DECLARE_TOPOLOGY=false.
    """
    settings = load_settings()
    with user_errors():
        catalog = Catalog.load(settings.catalog, settings.schemas_dir)
        names = BusNames(settings.bus_prefix)
        grant_list = grants(names, [party.id for party in catalog.parties])
        passwords = apply_grants(grant_list, vhost_of(settings.amqp_url))
        out.mkdir(parents=True, exist_ok=True)
        for user, password in passwords.items():
            path = out / f"{user}.url"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(url_for(settings.amqp_url, user, password) + "\n")
    table = Table(title="Broker users")
    for column in ("user", "read", "write", "url file"):
        table.add_column(column)
    for grant in grant_list:
        table.add_row(grant.user, grant.read, grant.write, str(out / f"{grant.user}.url"))
    console().print(table)


@node_app.command("run")
def node_run(
    party: PartyArg,
    handlers: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:FUNCTION",
            help="What registers handlers on the node instead of the adapter the catalog names "
            "for PARTY, e.g. examples.handlers:register; found from the current directory too.",
        ),
    ] = None,
    adapter: Annotated[
        bool,
        typer.Option(help="Register the adapter the catalog names for PARTY (if it names one)."),
    ] = True,
) -> None:
    """Run PARTY's node until SIGTERM or Ctrl-C; prints `ready PARTY` once consuming.

    The node runs the handlers of the adapter the catalog names for PARTY; --handlers runs
    others instead, --no-adapter none.
    """
    settings = load_settings()
    configure_logging(settings.log_level)
    with user_errors():
        catalog = Catalog.load(settings.catalog, settings.schemas_dir)
        node = build_node(party, settings, catalog=catalog, companions=node_companions(settings))
        if handlers:
            _load_handlers(handlers)(node)
        elif adapter and catalog.check_party(party).adapter is not None:
            load_adapter(catalog, party).register(node)
        asyncio.run(_serve(node))


def _load_handlers(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    # A console script's sys.path lacks the current directory; a department's own package
    # (copied from examples/handlers.py) usually sits there, as with `python -m`.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(import_module(module_name), attribute or "register")
    except (ImportError, AttributeError) as exc:
        raise fail("config-error", f"cannot load handlers {spec!r}: {exc}") from None


async def _serve(node: Node) -> None:
    stop = stop_on_signal()
    await node.start()
    announce_ready(node.party)
    await stop.wait()
    await node.stop()


def send(
    sender: Annotated[str, typer.Option("--from", help="Sending party.")],
    recipient: Annotated[
        str | None, typer.Option("--to", help="Providing party (not with --refile).")
    ] = None,
    service: Annotated[
        str | None, typer.Option(help="Service code from the catalog (not with --refile).")
    ] = None,
    payload: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Payload file: JSON or XML (not with --refile)."
        ),
    ] = None,
    wire_format: Annotated[
        WireFormat | None, typer.Option("--format", help="Envelope format (default: as payload).")
    ] = None,
    case_id: Annotated[str | None, typer.Option(help="The citizen's case number.")] = None,
    refile: Annotated[
        str | None,
        typer.Option(
            metavar="REQUEST_ID",
            help="File this finished request of --from again as a new one: same service, "
            "provider, payload and case id, new message id.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the response or fault.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
) -> None:
    """Send a request and print its message id (and, with --wait, the answer).

    A final answer is never replaced: to try again, file the request anew with --refile.
    """
    configure_logging("WARNING")
    if refile is not None:
        clashing = [
            name
            for name, value in (
                ("--to", recipient),
                ("--service", service),
                ("--payload", payload),
                ("--format", wire_format),
                ("--case-id", case_id),
            )
            if value is not None
        ]
        if clashing:
            raise fail(
                "usage-error",
                f"--refile takes all of it from request {refile}; drop {', '.join(clashing)}",
            )
        with user_errors():
            result = asyncio.run(_send(sender, lambda node: node.refile(refile), wait, timeout))
        result["refiles"] = refile
    else:
        if recipient is None or service is None or payload is None:
            raise fail(
                "usage-error", "--to, --service and --payload are needed (or --refile REQUEST_ID)"
            )
        with user_errors():
            data, payload_format = _read_payload(payload.read_bytes(), service)

            def file(node: Node) -> Awaitable[str]:
                return node.request(
                    service,
                    data,
                    recipient=recipient,
                    case_id=case_id,
                    wire_format=wire_format or payload_format,
                )

            result = asyncio.run(_send(sender, file, wait, timeout))
    print_json(result)
    if result.get("answer") in ("fault", "undelivered", "timeout"):
        raise typer.Exit(code=1)


def _read_payload(raw: bytes, service: str) -> tuple[dict[str, Any], WireFormat]:
    """The request payload in a file: JSON (an object) or the service's XML request document.

    Raises:
        Malformed (malformed): neither, saying what a payload file is (not an envelope).
    """
    what = (
        "a payload file is the service's request document alone (JSON or XML), not an "
        f"envelope: see examples/payloads/ and `exchange services show {service}`"
    )
    if raw.lstrip()[:1] in (b"{", b"["):
        try:
            data = loads_strict(raw)
        except Malformed as exc:
            raise Malformed(f"the payload file is not valid JSON: {exc.message}; {what}") from None
        if not isinstance(data, dict):
            raise Malformed(f"the JSON payload must be an object {{...}}; {what}")
        return data, WireFormat.JSON
    settings = load_settings()
    entry = Catalog.load(settings.catalog, settings.schemas_dir).service(service)
    try:
        document = parse(raw, max_size=settings.max_envelope_bytes)
        return payload_from_element(document, entry.code, entry.version, Kind.REQUEST), (
            WireFormat.XML
        )
    except (ValueError, Malformed) as exc:
        text = exc.message if isinstance(exc, Malformed) else str(exc)
        raise Malformed(
            f"the payload file is neither JSON nor its XML document: {text}; {what}"
        ) from None


async def _send(
    sender: str, file: Callable[[Node], Awaitable[str]], wait: bool, timeout: float
) -> dict[str, Any]:
    node = build_node(sender)
    async with node:
        request_id = await file(node)
        sent = await node.sent_request(request_id)
        assert sent is not None, "a request just filed is in the outbox"
        result: dict[str, Any] = {
            "message_id": request_id,
            "sender": sender,
            "to": sent.recipient,
            "case_id": sent.case_id,
        }
        if wait:
            try:
                notice = await node.wait_answer(request_id, timeout)
            except TimeoutError:
                result["answer"] = "timeout"
                return result
            result["answer"] = notice.kind
            if notice.envelope is not None:
                result["payload"] = notice.envelope.payload
                if notice.envelope.fault is not None:
                    result["fault"] = notice.envelope.fault.model_dump()
        return result


@dlq_app.command("list")
def dlq_list(party: PartyArg, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Requests that failed past the retry limit, and deliveries the broker dead-lettered."""
    with user_errors():
        rows = asyncio.run(_dlq_rows(party))
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Dead letters of {party}")
    for column in ("where", "message_id", "sender", "service", "attempts", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                str(row.get(key, ""))
                for key in ("where", "message_id", "sender", "service", "attempts", "detail")
            )
        )
    console().print(table)


async def _dlq_rows(party: str) -> list[dict[str, Any]]:
    async with _opened_store(party) as store:
        dead = await store.inbox_by_state(InboxState.DEAD)
    rows: list[dict[str, Any]] = [
        {
            "where": "store",
            "message_id": r.message_id,
            "sender": r.sender,
            "service": r.service,
            "attempts": r.attempts,
            "detail": "handler failed",
        }
        for r in dead
    ]
    for body, headers in await _dead_letters(party, take=False):
        rows.append(
            {
                "where": "broker",
                "message_id": "",
                "sender": "",
                "service": "",
                "attempts": headers.get("x-delivery-count", ""),
                "detail": f"{len(body)} bytes, dead-lettered before it was stored",
            }
        )
    return rows


@dlq_app.command("replay")
def dlq_replay(
    party: PartyArg,
    message_id: Annotated[
        str | None, typer.Argument(help="A request of the store: refused, it is final.")
    ] = None,
) -> None:
    """Put broker dead letters back in the inbox; requests dead in the store stay final.

    A request dead in the store was answered with ``processing-failed``, its final answer,
    so it is never handed to the handler again (DESIGN.md: Final is final). Its sender files
    it again as a new request: ``exchange send --from SENDER --refile REQUEST_ID``.
    """
    with user_errors():
        if message_id is not None:
            asyncio.run(_refuse_replay(party, message_id))
        replayed, final = asyncio.run(_replay(party))
    console().print(f"replayed {replayed} broker dead letter(s) for {party}")
    for record in final:
        console().print(
            f"not replayed: request {record.message_id} from {record.sender} is final "
            f"(processing-failed sent); to try again: "
            f"exchange send --from {record.sender} --refile {record.message_id}"
        )


async def _refuse_replay(party: str, message_id: str) -> None:
    """Refuse to replay one request of the store, saying why and what to do instead.

    Raises:
        AlreadyFinal (already-final): it has its final answer.
        UnknownMessage (unknown-message): the store has no such request.
    """
    async with _opened_store(party) as store:
        record = await store.get_inbox(message_id)
    if record is None or record.kind != Kind.REQUEST.value:
        raise UnknownMessage(
            f"{party} has received no request {message_id}; broker dead letters have no id "
            f"here: `exchange dlq replay {party}` replays them all"
        )
    if record.state in OPEN_INBOX:
        raise StateConflict(f"request {message_id} is still open ({record.state.value})")
    raise AlreadyFinal(
        f"request {message_id} from {record.sender} already has its final answer "
        f"({record.state.value}); it is not handed to the handler again. Fix the cause, "
        f"then have {record.sender} file it again as a new request with the same case id: "
        f"`exchange send --from {record.sender} --refile {message_id}`"
    )


async def _replay(party: str) -> tuple[int, list[InboxRecord]]:
    """Replay the broker's dead letters; return how many, and the store's dead requests."""
    async with _opened_store(party) as store:
        dead = await store.inbox_by_state(InboxState.DEAD)
    return len(await _dead_letters(party, take=True)), list(dead)


@contextlib.asynccontextmanager
async def _opened_store(party: str) -> AsyncIterator[Store]:
    store = open_store(party, load_settings(), SYSTEM_CLOCK)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _dead_letters(party: str, *, take: bool) -> list[tuple[bytes, dict[str, Any]]]:
    settings = load_settings()
    return await dead_letters(settings.amqp_url, BusNames(settings.bus_prefix), party, take=take)
