"""Folder bridge: a departmental system that can only drop files talks to the bus through a folder.

Folders under ``root`` (created when missing):

``outbox/``
    The departmental system drops request files here. A file counts once its writing is
    complete: the system writes ``name.tmp`` (or any other suffix) and then renames it to
    ``name.json`` or ``name.xml``; files with other suffixes and hidden files are ignored.
``.work/``
    Files the bridge has claimed (moved here by an atomic rename) and is sending.
``sent/``
    The archive: each sent file, renamed ``<request-id>__<original name>``, so the system
    learns the request id its file got.
``rejected/``
    Files that could not be sent, each beside ``<name>.reason.txt`` with ``<code>: <message>``
    (``malformed``, ``too-large``, ``unknown-service``, ``access-denied``, ``invalid-content``
    naming the field, ...).
``inbox/``
    Answers: ``<request-id>.<kind>.<json|xml>`` for every receipt, status, response and
    fault, in the format of the request, and ``<request-id>.undelivered.json``. Files appear
    complete (written as ``*.tmp``, then renamed). An answer file is written once; a status
    file is replaced by the next status of the request. A request has one final answer file
    (response, fault or undelivered): a status or answer after it is late, kept in the
    node's audit log and never written here.
``.pending/``
    The bridge's own bookkeeping: one marker per request still waiting for its final answer.

Request files:

- JSON: ``{"service": "tree-felling-permit", "version": "1", "case_id": "KZN-1",
  "payload": {...}, "attachments": ["site-plan.pdf"]}``; ``version`` (default: the newest),
  ``case_id`` and ``attachments`` are optional. Attachments are files dropped in
  ``outbox/`` beside the request file (before it); they are sent with it and archived as
  ``sent/<request-id>__<name>``. Received attachments of an answer are written to
  ``inbox/<request-id>.<name>`` before its answer file appears.
- XML: the service's request document, ``<s:request xmlns:s=
  "urn:kazan:exchange:service:<code>:<version>">...</s:request>``; the service and version
  come from the namespace. The case id comes from the file name: ``<case-id>__<rest>.xml``
  (no ``__`` in the name: no case id).

JSON answers carry ``request_id``, ``kind``, ``file`` (the request file's name),
``message_id``, ``service``, ``version``, ``case_id``, ``created_at`` and ``payload`` or
``fault``. XML answers are the service document of the answer: ``<s:response>`` (valid
against the service's response XSD), ``<s:status>``, ``<s:receipt/>``, or ``<s:fault>``
with ``<s:code>`` and ``<s:text>``.

Exactly once: the request's message id is derived from the party, the file name and the
file's SHA-256, and ``Node.request`` returns without sending when its outbox already holds
that id. A bridge killed at any point re-processes what is left in ``.work/`` and sends
nothing twice; the same file (name and content) dropped again is the same request. Answers
that arrived while no file could be written are written from the store at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exchange._validation import first_error
from exchange.connectors._files import (
    answer_file,
    copy_atomic,
    is_request_file,
    read_request,
    request_id_for,
    write_atomic,
)
from exchange.envelope.model import Kind
from exchange.exceptions import (
    AttachmentMissing,
    BrokerUnavailable,
    ExchangeError,
    InvalidContent,
    PublishNotConfirmed,
    StoreError,
    TooLarge,
    Unroutable,
)
from exchange.node import Node, Notice
from exchange.signing import WireFormat

# Errors after which the file stays claimed and is tried again: nothing is wrong with it.
_TRANSIENT = (StoreError, BrokerUnavailable, PublishNotConfirmed)


class FolderBridge:
    """Sends the request files a departmental system drops, and writes the answers back.

    The node must be started before ``run`` (``exchange bridge folder`` does both). The
    bridge registers its notice listener at construction, so build it before starting the
    node to miss no answer.
    """

    def __init__(
        self, node: Node, root: Path, *, poll_interval: float = 0.5, pause: float = 0.0
    ) -> None:
        """Bridge ``node`` to the folders under ``root``.

        Args:
            node: the party's node (its outbox makes sending exactly once).
            root: the folder pair's root (see the module docstring for its layout).
            poll_interval: seconds between looks at ``outbox/``.
            pause: test hook, seconds to wait after claiming a file and again after its
                request is durable, widening the windows a crash test kills in.
        """
        self.node = node
        self.root = root
        self.outbox = root / "outbox"
        self.inbox = root / "inbox"
        self.rejected = root / "rejected"
        self.sent = root / "sent"
        self.work = root / ".work"
        self.pending = root / ".pending"
        self.poll_interval = poll_interval
        self.pause = pause
        self._stopping = asyncio.Event()
        node.on_notice(self._on_notice)

    # --- lifecycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folders that are missing."""
        for folder in (self.outbox, self.inbox, self.rejected, self.sent, self.work, self.pending):
            folder.mkdir(parents=True, exist_ok=True)

    async def run(self) -> None:
        """Catch up on answers, then send dropped files every ``poll_interval`` until ``stop``."""
        self._stopping.clear()
        self.prepare()
        await self.catch_up()
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except OSError as exc:  # a share gone away: try again next round
                self._log().warning("folder.io-failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_interval)

    def stop(self) -> None:
        """Make ``run`` return after the file it is working on."""
        self._stopping.set()

    # --- sending --------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Send what is claimed but unfinished, then every finished file in ``outbox/``.

        Returns the number of files sent or rejected. A file that hit a transient error
        (store or broker down) stays in ``.work/`` and ends this round.
        """
        done = 0
        for path in self._files(self.work):
            if not await self._process(path):
                return done
            done += 1
        for path in self._files(self.outbox):
            if self._stopping.is_set():
                break
            claimed = self.work / path.name
            try:
                os.rename(path, claimed)  # the claim: atomic, so a file is taken once
            except FileNotFoundError:
                continue  # withdrawn by the system, or taken by another bridge process
            await self._pause()
            if not await self._process(claimed):
                return done
            done += 1
        return done

    def _files(self, folder: Path) -> list[Path]:
        """Finished request files in ``folder``, oldest first."""
        found: list[tuple[int, str, Path]] = []
        for path in folder.iterdir():
            if not is_request_file(path):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue  # withdrawn meanwhile
            if stat.S_ISREG(info.st_mode):
                found.append((info.st_mtime_ns, path.name, path))
        return [path for _, _, path in sorted(found)]

    async def _process(self, path: Path) -> bool:
        """Send one claimed file; False if it must be tried again later."""
        limit = self.node.config.max_envelope_bytes
        size = path.stat().st_size
        if size > limit:
            self._reject(path, TooLarge(f"{size} bytes is over the {limit}-byte limit"))
            return True
        raw = path.read_bytes()
        request_id = request_id_for(self.node.party, path.name, raw)
        try:
            dropped = read_request(path.name, raw, self.node.catalog, limit)
        except ExchangeError as exc:
            self._reject(path, exc)
            return True
        # Sent before (a crash before archiving, or the same file dropped again): its
        # answers may have come and gone, so the final one is looked up once it is sent.
        known = await self.node.sent_request(request_id) is not None
        attachments = [self.outbox / name for name in dropped.attachments]
        absent = [p.name for p in attachments if not p.is_file()]
        if absent and not known:
            self._reject(
                path,
                AttachmentMissing(f"{', '.join(absent)}: not in outbox/ beside the request"),
            )
            return True
        # The marker comes first: an answer may arrive before ``request`` returns.
        marker = self.pending / f"{request_id}.json"
        write_atomic(marker, _marker(path.name, dropped.wire_format))
        try:
            await self.node.request(
                dropped.service,
                dropped.payload,
                version=dropped.version,
                case_id=dropped.case_id,
                wire_format=dropped.wire_format,
                message_id=request_id,
                attachments=attachments,
            )
        except Unroutable:
            pass  # durable and final: the undelivered notice reports it in inbox/
        except _TRANSIENT as exc:
            self._log(request_id).warning("folder.send-deferred", file=path.name, error=str(exc))
            return False
        except ExchangeError as exc:
            marker.unlink(missing_ok=True)
            self._reject(path, exc)
            return True
        except ValidationError as exc:  # the envelope model refused a field (e.g. a float)
            marker.unlink(missing_ok=True)
            self._reject(path, _invalid(exc))
            return True
        if known:
            await self._deliver_final(request_id)  # the marker was written again
        await self._pause()
        for attachment in attachments:  # before the request file: a re-run finds it known
            with contextlib.suppress(FileNotFoundError):
                os.replace(attachment, self.sent / f"{request_id}__{attachment.name}")
        os.replace(path, self.sent / f"{request_id}__{path.name}")
        self._log(request_id).info("folder.sent", file=path.name, service=dropped.service)
        return True

    def _reject(self, path: Path, error: ExchangeError) -> None:
        reason = self.rejected / f"{path.name}.reason.txt"
        write_atomic(reason, f"{error.code}: {error.message}\n".encode())
        os.replace(path, self.rejected / path.name)
        self._log().warning("folder.rejected", file=path.name, code=error.code, error=error.message)

    async def _pause(self) -> None:
        if self.pause > 0:
            await asyncio.sleep(self.pause)

    # --- answers --------------------------------------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        marker = self._marker_of(notice.request_id)
        if marker is not None:
            self._deliver(notice, *marker)

    def _marker_of(self, request_id: str) -> tuple[str, WireFormat] | None:
        """(request file name, format) of a request still waiting, or None (not ours, or done)."""
        try:
            data: Any = json.loads((self.pending / f"{request_id}.json").read_bytes())
            return str(data["file"]), WireFormat(data["format"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return request_id, WireFormat.JSON  # a damaged marker: answer in JSON all the same

    def _deliver(self, notice: Notice, source: str, wire_format: WireFormat) -> None:
        if notice.envelope is not None and notice.envelope.attachments:
            self._write_attachments(notice.request_id, notice)
        name, data = answer_file(notice, wire_format, source)
        written = write_atomic(self.inbox / name, data, replace=notice.kind == Kind.STATUS.value)
        if notice.final:
            (self.pending / f"{notice.request_id}.json").unlink(missing_ok=True)
        if written:
            self._log(notice.request_id).info("folder.answer-written", file=name)

    def _write_attachments(self, request_id: str, notice: Notice) -> None:
        """Copy an answer's attachments to ``inbox/<request-id>.<name>``, each appearing whole."""
        assert notice.envelope is not None
        for file in self.node.attachment_files(notice.envelope):
            target = self.inbox / f"{request_id}.{file.name}"
            if target.exists():
                continue
            try:
                copy_atomic(file.path, target)
            except FileNotFoundError:
                self._log(request_id).warning("folder.attachment-missing", name=file.name)

    async def catch_up(self) -> int:
        """Write final answers that reached the store while no file was written (a crash).

        Returns how many were written.
        """
        count = 0
        for path in sorted(self.pending.glob("*.json")):
            count += await self._deliver_final(path.stem)
        return count

    async def _deliver_final(self, request_id: str) -> bool:
        """Write a waiting request's final answer if the store has it."""
        marker = self._marker_of(request_id)
        notice = await self.node.final_notice(request_id)
        if marker is None or notice is None:
            return False
        self._deliver(notice, *marker)
        return True

    def _log(self, request_id: str | None = None) -> Any:
        logger = self.node.log(message_id=request_id) if request_id else self.node.log()
        return logger.bind(root=str(self.root))


def _marker(name: str, wire_format: WireFormat) -> bytes:
    return json.dumps({"file": name, "format": wire_format.value}).encode()


def _invalid(exc: ValidationError) -> ExchangeError:
    return InvalidContent(": ".join(first_error(exc, "request")))
