"""The folder bridge's files: dropped request files in, answer documents out, atomic writes.

See ``exchange.connectors.folder`` for the conventions these functions implement.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange._hazmat.xml import parse, serialize
from exchange.attachments.store import sync_dir
from exchange.catalog import Catalog
from exchange.codec.json import loads_strict
from exchange.codec.xml import payload_element, payload_from_element
from exchange.envelope.content import answer_content
from exchange.envelope.model import Kind
from exchange.exceptions import Malformed, TooLarge
from exchange.node.notices import Notice
from exchange.signing import WireFormat

# The suffixes of finished request files; anything else in outbox/ (``.tmp``) is not ready.
SUFFIXES = {".json": WireFormat.JSON, ".xml": WireFormat.XML}
# uuid5 namespace of request ids derived from dropped files (a fixed, arbitrary UUID).
_NAMESPACE = uuid.UUID("6f1d8a52-3c1e-5b8e-9a43-0c5e2b7d4f10")
_SERVICE_NS = "urn:kazan:exchange:service:"
_JSON_FIELDS = {"service", "version", "case_id", "payload", "attachments"}
CASE_SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class DroppedRequest:
    """What a departmental system asked for in one request file."""

    service: str
    version: str | None
    case_id: str | None
    payload: dict[str, Any]
    wire_format: WireFormat
    attachments: tuple[str, ...] = ()
    """Names of files beside the request file that travel with it (JSON request files)."""


def request_id_for(party: str, name: str, raw: bytes) -> str:
    """The request's message id: uuid5 over the party, the file name and the content's SHA-256.

    The same file processed again (after a crash) gets the same id, so it is sent once.
    """
    return str(uuid.uuid5(_NAMESPACE, f"{party}/{name}/{hashlib.sha256(raw).hexdigest()}"))


def is_request_file(path: Path) -> bool:
    """A finished request file: ``*.json`` or ``*.xml``, not hidden."""
    return path.suffix.lower() in SUFFIXES and not path.name.startswith(".")


def read_request(name: str, raw: bytes, catalog: Catalog, max_bytes: int) -> DroppedRequest:
    """Read a request file (JSON envelope or XML service document).

    Raises:
        TooLarge (too-large), Malformed (malformed): not a request file of the convention.
        UnknownService (unknown-service): the catalog has no such service (version).
    """
    if len(raw) > max_bytes:
        raise TooLarge(f"{name}: {len(raw)} bytes is over the {max_bytes}-byte limit")
    if SUFFIXES.get(Path(name).suffix.lower()) is WireFormat.JSON:
        return _read_json(raw)
    return _read_xml(name, raw, catalog, max_bytes)


def _read_json(raw: bytes) -> DroppedRequest:
    document = loads_strict(raw)
    if not isinstance(document, dict):
        raise Malformed("request file: a JSON object is expected")
    unknown = sorted(set(document) - _JSON_FIELDS)
    if unknown:
        raise Malformed(f"request file: unknown field {unknown[0]}")
    service, payload = document.get("service"), document.get("payload")
    if not isinstance(service, str) or not service:
        raise Malformed("request file: service: a service code is required")
    if not isinstance(payload, dict):
        raise Malformed("request file: payload: a JSON object is required")
    for field in ("version", "case_id"):
        if document.get(field) is not None and not isinstance(document[field], str):
            raise Malformed(f"request file: {field}: must be a string")
    attachments = document.get("attachments", [])
    if not isinstance(attachments, list) or not all(_plain_name(a) for a in attachments):
        raise Malformed(
            "request file: attachments: a list of file names beside the request file "
            "(no folders, not hidden)"
        )
    return DroppedRequest(
        service,
        document.get("version"),
        document.get("case_id"),
        payload,
        WireFormat.JSON,
        tuple(attachments),
    )


def _plain_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and Path(name).name == name
        and not name.startswith(".")
        and not is_request_file(Path(name))
    )


def _read_xml(name: str, raw: bytes, catalog: Catalog, max_bytes: int) -> DroppedRequest:
    root = parse(raw, max_size=max_bytes)
    namespace, _, local = str(root.tag).lstrip("{").partition("}")
    if not namespace.startswith(_SERVICE_NS) or local != Kind.REQUEST.value:
        raise Malformed(f"request file: root must be <s:request xmlns:s='{_SERVICE_NS}CODE:VER'>")
    code, _, version = namespace[len(_SERVICE_NS) :].partition(":")
    if not code or not version:
        raise Malformed(f"request file: namespace {namespace} names no service and version")
    entry = catalog.service(code, version)
    try:
        payload = payload_from_element(root, entry.code, entry.version, Kind.REQUEST)
    except ValueError as exc:
        raise Malformed(f"request file: {exc}") from None
    stem = Path(name).stem
    case_id = stem.split(CASE_SEPARATOR, 1)[0] if CASE_SEPARATOR in stem else None
    return DroppedRequest(entry.code, entry.version, case_id or None, payload, WireFormat.XML)


def answer_file(notice: Notice, wire_format: WireFormat, source: str) -> tuple[str, bytes]:
    """The inbox file of a notice: ``(<request-id>.<kind>.<json|xml>, its bytes)``.

    ``undelivered`` (and an answer whose content was pruned) is JSON: no envelope to render.
    """
    envelope = notice.envelope
    if envelope is None or wire_format is WireFormat.JSON:
        return f"{notice.request_id}.{notice.kind}.json", _json_answer(notice, source)
    content = envelope
    if envelope.fault is not None:
        fault = {"code": envelope.fault.code, "text": envelope.fault.text}
        content = envelope.model_copy(update={"payload": fault})
    return f"{notice.request_id}.{notice.kind}.xml", serialize(payload_element(content))


def _json_answer(notice: Notice, source: str) -> bytes:
    document: dict[str, Any] = {
        "request_id": notice.request_id,
        "kind": notice.kind,
        "file": source,
    }
    envelope = notice.envelope
    if envelope is not None:
        document.update(
            message_id=envelope.message_id,
            service=envelope.service.code,
            version=envelope.service.version,
            case_id=envelope.case_id,
            created_at=envelope.created_at.isoformat().replace("+00:00", "Z"),
        )
        document.update(answer_content(envelope))
    return json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"


def write_atomic(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``path`` as ``path.tmp`` then rename it: readers never see half a file.

    Without ``replace``, an existing file is left alone and False is returned.
    """
    if not replace and path.exists():
        return False
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)
    return True


def copy_atomic(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` through ``path.tmp``: readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(source, tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)
