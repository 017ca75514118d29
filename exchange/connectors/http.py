"""The HTTP bridge: a departmental system POSTs requests to its adapter and gets callbacks.

Senders ``POST /requests`` and get ``202 {message_id}``; receipts, statuses, responses,
faults and ``undelivered`` come back as callbacks (see ``_callbacks``), and
``GET /requests/{id}`` shows where a request stands. Providers get the requests they
provide POSTed to their ``requests_url`` (the node's handler returns ``LATER``) and answer
whenever they are ready with ``POST /requests/{id}/respond``, ``/reject`` or ``/status``.
The contract is ``exchange/data/schemas/http-bridge.openapi.json``, served at ``GET /openapi.json``.

Attachments: ``POST /requests`` also takes ``multipart/form-data``, a ``request`` part (the
JSON body) followed by ``attachment`` file parts, streamed to disk (never held in memory);
``GET /requests/{id}/attachments/{sha256}`` streams an attachment of a request (or of an
answer to it) the party holds; ``GET /requests/{id}`` lists them with their URLs.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yarl import URL

from exchange._validation import first_error
from exchange.attachments import Outgoing
from exchange.config import packaged
from exchange.connectors._callbacks import CallbackConfig, Dispatcher
from exchange.envelope.content import answer_content
from exchange.envelope.model import Envelope
from exchange.exceptions import (
    AttachmentRefused,
    BrokerUnavailable,
    ContentPruned,
    EnvelopeError,
    ExchangeError,
    Malformed,
    PolicyError,
    StateConflict,
    StoreUnavailable,
    TransportError,
    UnknownMessage,
)
from exchange.node import LATER, IncomingRequest, Later, Node
from exchange.node.store.base import PRUNED, InboxRecord, InboxState, OutboxRecord
from exchange.signing import WireFormat

OPENAPI_PATH = packaged("schemas") / "http-bridge.openapi.json"
_OPEN_PATHS = frozenset({"/health", "/openapi.json"})  # served without the bearer token


# --- request bodies ---------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CallbackUrl(_Body):
    callback_url: str | None = None

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            url = URL(value)
            if url.scheme not in ("http", "https") or not url.host:
                raise ValueError("must be an absolute http(s) URL")
        return value


class SendBody(_CallbackUrl):
    """``POST /requests``: a request to send to the service's provider."""

    service: str = Field(min_length=1)
    payload: dict[str, Any]
    case_id: str | None = None
    version: str | None = None
    format: Literal["xml", "json"] | None = None


class RefileBody(_CallbackUrl):
    """``POST /requests/{id}/refile``: where the new request's callbacks go (default: as before)."""


class RespondBody(_Body):
    """``POST /requests/{id}/respond``: the response payload."""

    payload: dict[str, Any]


class RejectBody(_Body):
    """``POST /requests/{id}/reject``: a fault code and a text for people."""

    code: str
    text: str = Field(min_length=1)


class StatusBody(_Body):
    """``POST /requests/{id}/status``: how the request is getting on."""

    state: str = Field(min_length=1)
    note: str | None = None


# --- the bridge -------------------------------------------------------------------------


class HttpBridge:
    """The HTTP face of one party's node. The node is started and stopped by its owner."""

    def __init__(
        self,
        node: Node,
        callbacks: CallbackConfig | None = None,
        *,
        token: str | None = None,
        openapi_path: Path = OPENAPI_PATH,
    ) -> None:
        self.node = node
        self.callbacks = Dispatcher(node, callbacks or CallbackConfig())
        self.token = token
        self.openapi_path = openapi_path
        self._runner: web.AppRunner | None = None
        if self.callbacks.config.requests_url is not None:
            self._hand_over_provided_services()

    def app(self) -> web.Application:
        """The aiohttp application (routes and JSON error handling)."""
        app = web.Application(
            middlewares=[self._errors, self._auth],
            client_max_size=self.node.config.max_envelope_bytes,
        )
        app.router.add_get("/health", self.health)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_post("/requests", self.send)
        app.router.add_get("/requests/{message_id}", self.state)
        app.router.add_post("/requests/{message_id}/refile", self.refile)
        app.router.add_post("/requests/{message_id}/respond", self.respond)
        app.router.add_post("/requests/{message_id}/reject", self.reject)
        app.router.add_post("/requests/{message_id}/status", self.status)
        app.router.add_get("/requests/{message_id}/attachments/{sha256}", self.attachment)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start delivering callbacks and serving HTTP; return the port listened on."""
        await self.callbacks.start()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound: int = self._runner.addresses[0][1]
        self.node.log().info("http-bridge.started", host=host, port=bound)
        return bound

    async def stop(self) -> None:
        """Stop serving and delivering; undelivered callbacks wait in the store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.callbacks.stop()

    def _hand_over_provided_services(self) -> None:
        async def hand_over(request: IncomingRequest) -> dict[str, Any] | Later:
            # Audited as handed-over; the dispatcher POSTs it to the requests_url.
            return LATER

        party = self.node.party
        for code in sorted({s.code for s in self.node.catalog.services if s.provider == party}):
            self.node.handler(code)(hand_over)

    # --- routes ---------------------------------------------------------------------------

    async def health(self, _request: web.Request) -> web.Response:
        """``GET /health``: the party served and the callbacks waiting for a 2xx."""
        return web.json_response(
            {"status": "ok", "party": self.node.party, "pending_callbacks": self.callbacks.pending}
        )

    async def openapi(self, _request: web.Request) -> web.Response:
        """``GET /openapi.json``: the bridge's contract, as committed."""
        return web.Response(body=self.openapi_path.read_bytes(), content_type="application/json")

    async def send(self, request: web.Request) -> web.Response:
        """``POST /requests``: validate, sign, store and publish; 202 with the message id.

        A ``multipart/form-data`` body carries the JSON as its ``request`` part and then
        ``attachment`` file parts (file name and content type as the parts give them).
        """
        staged: list[Path] = []
        try:
            if request.content_type == "multipart/form-data":
                body, attachments = await self._multipart(request, staged)
            else:
                body, attachments = SendBody.model_validate(await _json(request)), []
            message_id = await self._send(body, attachments)
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
        self.callbacks.wake()  # an undelivered may already be recorded
        location = f"/requests/{message_id}"
        return web.json_response(
            {"message_id": message_id}, status=202, headers={"Location": location}
        )

    async def _multipart(
        self, request: web.Request, staged: list[Path]
    ) -> tuple[SendBody, list[Outgoing]]:
        reader = await request.multipart()
        first = await reader.next()
        if not isinstance(first, BodyPartReader) or first.name != "request":
            raise Malformed("multipart: the first part must be 'request', the JSON body")
        body = SendBody.model_validate(await _part_json(first))
        policy = self.node.catalog.service(body.service, body.version).attachments
        attachments: list[Outgoing] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "attachment":
                raise Malformed("multipart: after 'request' only 'attachment' file parts")
            if not part.filename:
                raise Malformed("multipart: an attachment part needs a filename")
            if len(attachments) >= policy.max_count:
                raise AttachmentRefused(
                    f"{body.service} takes at most {policy.max_count} attachments"
                )
            path = self.node.attachments.root / "tmp" / f"upload-{secrets.token_hex(8)}"
            staged.append(path)
            await _stage(part, path, policy.max_size, part.filename)
            media_type = part.headers.get("Content-Type", "").split(";")[0].strip().lower()
            attachments.append(
                Outgoing(
                    path,
                    name=part.filename,
                    media_type=None
                    if media_type in ("", "application/octet-stream")
                    else media_type,
                )
            )
        return body, attachments

    async def _send(self, body: SendBody, attachments: list[Outgoing]) -> str:
        wire_format = WireFormat(body.format) if body.format else None
        async with self.callbacks.gate.shared():
            message_id = await self.node.request(
                body.service,
                body.payload,
                case_id=body.case_id,
                version=body.version,
                wire_format=wire_format,
                attachments=attachments,
            )
            if body.callback_url is not None:
                await self.callbacks.remember(message_id, body.callback_url)
        return message_id

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        """``GET /requests/{id}/attachments/{sha256}``: stream an attachment the party holds
        of a request (sent or received) or of an answer to it."""
        message_id, sha256 = request.match_info["message_id"], request.match_info["sha256"]
        for envelope in await self._envelopes_of(message_id):
            for file in self.node.attachment_files(envelope):
                if file.sha256 == sha256 and file.path.exists():
                    disposition = f"attachment; filename*=UTF-8''{quote(file.name, safe='')}"
                    return web.FileResponse(
                        file.path,
                        headers={
                            "Content-Type": file.media_type,
                            "Content-Disposition": disposition,
                        },
                    )
        raise UnknownMessage(f"{self.node.party} holds no attachment {sha256} of {message_id}")

    async def _envelopes_of(self, message_id: str) -> list[Envelope]:
        """The request ``message_id`` and the answers to it, as stored (pruned ones left out)."""
        records: list[OutboxRecord | InboxRecord] = []
        sent = await self.node.sent_request(message_id)
        if sent is not None:
            records = [sent, *await self.node.answers(message_id)]
        else:
            received = await self.node.received(message_id)
            if received is not None and received.kind == "request":
                records = [received]
        envelopes = (self.node.stored_envelope(record.wire) for record in records)
        return [envelope for envelope in envelopes if envelope is not None]

    async def refile(self, request: web.Request) -> web.Response:
        """``POST /requests/{id}/refile``: send a finished request again as a new one.

        Same service, provider, payload and case id, new message id (a final answer is never
        replaced); its callbacks go where the original's went unless a callback_url is given.
        """
        original = request.match_info["message_id"]
        body = RefileBody.model_validate(await _json(request) if request.can_read_body else {})
        async with self.callbacks.gate.shared():
            message_id = await self.node.refile(original)
            url = body.callback_url or await self.callbacks.callback_url(original)
            if url is not None:
                await self.callbacks.remember(message_id, url)
        self.callbacks.wake()
        return web.json_response(
            {"message_id": message_id, "refiles": original},
            status=202,
            headers={"Location": f"/requests/{message_id}"},
        )

    async def state(self, request: web.Request) -> web.Response:
        """``GET /requests/{id}``: a sent or received request's state and its answers so far."""
        message_id = request.match_info["message_id"]
        sent = await self.node.sent_request(message_id)
        if sent is not None:
            return web.json_response(await self._sent_state(sent))
        received = await self.node.received(message_id)
        if received is not None and received.kind == "request":
            return web.json_response(await self._received_state(received))
        raise UnknownMessage(f"{self.node.party} has no request {message_id}")

    async def respond(self, request: web.Request) -> web.Response:
        """``POST /requests/{id}/respond``: answer a received request."""
        body = RespondBody.model_validate(await _json(request))
        answer = await self.node.respond(request.match_info["message_id"], body.payload)
        return web.json_response({"message_id": answer})

    async def reject(self, request: web.Request) -> web.Response:
        """``POST /requests/{id}/reject``: refuse a received request with a signed fault."""
        body = RejectBody.model_validate(await _json(request))
        answer = await self.node.reject(request.match_info["message_id"], body.code, body.text)
        return web.json_response({"message_id": answer})

    async def status(self, request: web.Request) -> web.Response:
        """``POST /requests/{id}/status``: tell the sender how the request is getting on."""
        body = StatusBody.model_validate(await _json(request))
        answer = await self.node.status(request.match_info["message_id"], body.state, body.note)
        return web.json_response({"message_id": answer})

    async def _sent_state(self, sent: OutboxRecord) -> dict[str, Any]:
        answers = []
        for record in await self.node.answers(sent.message_id):
            answer: dict[str, Any] = {
                "kind": record.kind,
                "message_id": record.message_id,
                "received_at": record.received_at.isoformat(),
            }
            if record.state is InboxState.LATE:
                answer["late"] = True  # after the final answer: on record, not the answer
            envelope = self.node.stored_envelope(record.wire)
            if envelope is None:
                answers.append(answer | {"content_pruned": True})
                continue
            answers.append(answer | answer_content(envelope) | _listed(sent.message_id, envelope))
        return {
            "message_id": sent.message_id,
            "direction": "sent",
            "state": sent.state.value,
            "service": sent.service,
            "party": sent.recipient,
            "case_id": sent.case_id,
            "created_at": sent.created_at.isoformat(),
            "expires_at": sent.expires_at.isoformat(),
            "callback_url": await self.callbacks.callback_url(sent.message_id),
            "answers": answers,
            **_listed(sent.message_id, self.node.stored_envelope(sent.wire)),
        }

    async def _received_state(self, received: InboxRecord) -> dict[str, Any]:
        envelope = self.node.stored_envelope(received.wire)
        payload = envelope.payload if envelope is not None else None
        answers = [
            {
                "kind": record.kind,
                "message_id": record.message_id,
                "sent_at": record.created_at.isoformat(),
            }
            for record in await self.node.answers_sent(received.message_id)
        ]
        return {
            "message_id": received.message_id,
            "direction": "received",
            "state": received.state.value,
            "service": received.service,
            "party": received.sender,
            "case_id": received.case_id,
            "created_at": received.received_at.isoformat(),
            "expires_at": received.expires_at.isoformat(),
            "payload": payload,
            **_listed(received.message_id, envelope),
            "content_pruned": received.wire == PRUNED,
            "answers": answers,
            "waiting_on": await self.node.waiting_on(received.message_id)
            if received.state is InboxState.RECEIVED
            else None,
        }

    # --- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token is None or request.path in _OPEN_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return _error(401, "unauthorized", "a valid Authorization: Bearer token is needed")
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValidationError as exc:
            where, message = first_error(exc, "body")
            return _error(400, "invalid-request", f"{where}: {message}", field=where)
        except ExchangeError as exc:
            status = _status_of(exc)
            if status >= 500:
                self.node.log().error("http-bridge.failed", code=exc.code, error=exc.message)
            return _error(status, exc.code, exc.message)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}
            return _error(exc.status, code.get(exc.status, "http-error"), exc.reason)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise Malformed("the body must be a JSON object") from None


async def _part_json(part: BodyPartReader) -> Any:
    try:
        return await part.json()
    except ValueError:
        raise Malformed("the 'request' part must be a JSON object") from None


async def _stage(part: BodyPartReader, path: Path, max_size: int, name: str) -> None:
    """Write an uploaded file part to ``path`` block by block, refusing it past ``max_size``."""
    size = 0
    with path.open("wb") as out:
        while block := await part.read_chunk(1024 * 1024):
            size += len(block)
            if size > max_size:
                raise AttachmentRefused(
                    f"{name}: more than the {max_size} bytes the service allows per attachment"
                )
            out.write(block)


def _listed(message_id: str, envelope: Envelope | None) -> dict[str, Any]:
    """``{"attachments": [...]}`` with each entry's download URL (nothing if there are none)."""
    if envelope is None or not envelope.attachments:
        return {}
    return {
        "attachments": [
            {
                "name": item.name,
                "media_type": item.media_type,
                "size": item.size,
                "sha256": item.sha256,
                "url": f"/requests/{message_id}/attachments/{item.sha256}",
            }
            for item in envelope.attachments
        ]
    }


def _status_of(error: ExchangeError) -> int:
    if isinstance(error, UnknownMessage):
        return 404
    if isinstance(error, StateConflict | ContentPruned):
        return 409
    if isinstance(error, PolicyError | EnvelopeError):
        return 400
    if isinstance(error, StoreUnavailable | BrokerUnavailable):
        return 503
    if isinstance(error, TransportError):
        return 502
    return 500


def _error(status: int, code: str, message: str, **extra: str) -> web.Response:
    return web.json_response({"code": code, "message": message, **extra}, status=status)
