"""``exchange status ID --party P``: where one request stands, read from P's own store.

The command a requester uses after ``send --no-wait`` (and a provider for a request it
received): its state, the answers so far and, while a handler is parked, what it waits on.
It needs no broker, only the party's store.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from exchange._clock import SYSTEM_CLOCK
from exchange.catalog import read_catalog_data
from exchange.cli._output import console, fail, load_settings, print_json, user_errors
from exchange.envelope.content import answer_content
from exchange.exceptions import ContentPruned
from exchange.node.factory import open_store
from exchange.node.parking import waiting_on
from exchange.node.store.base import InboxState, Store
from exchange.signing.stored import decode_stored


def status(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The request's message id.")],
    party: Annotated[
        str, typer.Option("--party", help="Whose store to read: the sender or the provider.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show a request's state, its answers so far and what it waits on; exit 1 if not found."""
    with user_errors():
        # A typo in --party would otherwise open (and create) an empty store of that name.
        read_catalog_data(load_settings().catalog).check_party(party)
        doc = asyncio.run(_status(party, message_id))
    if doc is None:
        raise fail(
            "unknown-message",
            f"request {message_id} not found in {party}'s store",
            "give the id `exchange send` printed, with --party set to its sender or provider; "
            "`exchange trace ID` looks across all parties",
        )
    if as_json:
        print_json(doc)
        return
    out = console()
    labels = {"party": "provider" if doc["direction"] == "sent" else "sender"}
    for key in ("message_id", "direction", "state", "service", "party", "case_id", "created_at"):
        label = labels.get(key, key.replace("_", " "))
        out.print(f"{label:<11} {doc[key] if doc[key] is not None else '-'}")
    if doc.get("waiting_on"):
        out.print(f"{'waiting on':<11} {doc['waiting_on']}")
    if not doc["answers"]:
        out.print("answers     none yet")
    for answer in doc["answers"]:
        late = " (late: after the final answer, not passed on)" if answer.get("late") else ""
        out.print(f"answer      {answer['kind']} {answer['message_id']} at {answer['at']}{late}")
        if answer.get("payload") is not None:
            out.print(f"            {json.dumps(answer['payload'], ensure_ascii=False)}")
        if answer.get("fault") is not None:
            out.print(f"            fault {json.dumps(answer['fault'], ensure_ascii=False)}")


async def _status(party: str, message_id: str) -> dict[str, Any] | None:
    store = open_store(party, load_settings(), SYSTEM_CLOCK)
    await store.open()
    try:
        return await _sent(store, message_id) or await _received(store, message_id)
    finally:
        await store.close()


async def _sent(store: Store, message_id: str) -> dict[str, Any] | None:
    sent = await store.get_outbox(message_id)
    if sent is None or sent.kind != "request":
        return None
    answers = []
    for record in await store.inbox_for(message_id):
        answer: dict[str, Any] = {
            "kind": record.kind,
            "message_id": record.message_id,
            "at": record.received_at.isoformat(),
        }
        if record.state is InboxState.LATE:
            answer["late"] = True
        answers.append(answer | _content(record.wire))
    return {
        "message_id": sent.message_id,
        "direction": "sent",
        "state": sent.state.value,
        "service": sent.service,
        "party": sent.recipient,
        "case_id": sent.case_id,
        "created_at": sent.created_at.isoformat(),
        "answers": answers,
        "waiting_on": None,
    }


async def _received(store: Store, message_id: str) -> dict[str, Any] | None:
    received = await store.get_inbox(message_id)
    if received is None or received.kind != "request":
        return None
    answers = [
        {"kind": record.kind, "message_id": record.message_id, "at": record.created_at.isoformat()}
        for record in await store.outbox_answering(message_id)
    ]
    open_now = received.state is InboxState.RECEIVED
    return {
        "message_id": received.message_id,
        "direction": "received",
        "state": received.state.value,
        "service": received.service,
        "party": received.sender,
        "case_id": received.case_id,
        "created_at": received.received_at.isoformat(),
        "answers": answers,
        "waiting_on": await waiting_on(store, message_id) if open_now else None,
    }


def _content(wire: bytes) -> dict[str, Any]:
    """An answer's payload or fault, unless the store kept only its metadata."""
    try:
        return answer_content(decode_stored(wire))
    except ContentPruned:  # PRUNED: the wire is gone, its digest remains
        return {"content_pruned": True}
