"""Envelope <-> XML element tree, checked against ``exchange/data/schemas/envelope.xsd``.

The payload is one element in the service's namespace, named after the envelope's kind;
its children map one-to-one onto the payload's JSON object (a list is a repeated element).
XML has no types, so an XML payload decodes to strings; the service's payload model gives
them their types at the payload-schema stage.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from exchange._hazmat.xml import (
    Element,
    XMLSchema,
    element,
    load_schema,
    schema_violation,
    sub_element,
)
from exchange._validation import first_error
from exchange.config import ENVELOPE_XSD
from exchange.envelope.model import Envelope, Kind
from exchange.exceptions import Malformed

ENVELOPE_NS = "urn:kazan:exchange:envelope:1"
_E = "{" + ENVELOPE_NS + "}"


def service_namespace(code: str, version: str) -> str:
    """The XML namespace of a service's payload documents."""
    return f"urn:kazan:exchange:service:{code}:{version}"


@cache
def _schema() -> XMLSchema:
    # The envelope's own schema ships with the code; EXCHANGE_SCHEMAS_DIR is the catalog's.
    return load_schema(ENVELOPE_XSD)


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def encode_xml(envelope: Envelope) -> Element:
    """Build the unsigned XML element tree of an envelope."""
    root = element(_E + "envelope", nsmap={None: ENVELOPE_NS}, version="1")
    sub_element(root, _E + "messageId", envelope.message_id)
    sub_element(root, _E + "kind", envelope.kind.value)
    sub_element(root, _E + "service", code=envelope.service.code, version=envelope.service.version)
    sub_element(root, _E + "sender", envelope.sender)
    sub_element(root, _E + "recipient", envelope.recipient)
    sub_element(root, _E + "createdAt", _timestamp(envelope.created_at))
    sub_element(root, _E + "expiresAt", _timestamp(envelope.expires_at))
    for tag, value in (
        ("correlationId", envelope.correlation_id),
        ("caseId", envelope.case_id),
        ("requestDigest", envelope.request_digest),
    ):
        if value is not None:
            sub_element(root, _E + tag, value)
    sub_element(root, _E + "test", "true" if envelope.test else "false")
    if envelope.payload is not None:
        sub_element(root, _E + "payload").append(payload_element(envelope))
    if envelope.attachments:
        holder = sub_element(root, _E + "attachments")
        for item in envelope.attachments:
            sub_element(
                holder,
                _E + "attachment",
                name=item.name,
                mediaType=item.media_type,
                size=str(item.size),
                sha256=item.sha256,
                location=item.location,
            )
    if envelope.fault is not None:
        sub_element(root, _E + "fault", envelope.fault.text, code=envelope.fault.code)
    return root


def payload_element(envelope: Envelope) -> Element:
    """The payload as its service document: ``<s:{kind}>`` in the service's namespace."""
    ns = service_namespace(envelope.service.code, envelope.service.version)
    document = element(f"{{{ns}}}{envelope.kind.value}", nsmap={"s": ns})
    _encode_object(document, ns, envelope.payload or {})
    return document


def payload_document(root: Element) -> Element | None:
    """The service document inside an envelope tree, as it stands (None when there is none)."""
    holder = root.find(_E + "payload")
    return None if holder is None or len(holder) == 0 else holder[0]


def _encode_object(parent: Element, ns: str, data: dict[str, Any]) -> None:
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            child = sub_element(parent, f"{{{ns}}}{key}")
            if isinstance(item, dict):
                _encode_object(child, ns, item)
            elif isinstance(item, bool):
                child.text = "true" if item else "false"
            else:
                child.text = str(item)


def decode_xml(root: Element) -> Envelope:
    """Read an envelope from its element tree (any ``ds:Signature`` already removed).

    Raises:
        Malformed (malformed): breaks the XSD or the envelope model's rules.
    """
    violation = schema_violation(_schema(), root)
    if violation is not None:
        raise Malformed(f"envelope schema: {violation[0]}: {violation[1]}")
    fields: dict[str, Any] = {}
    for child in root:
        name = child.tag[len(_E) :] if isinstance(child.tag, str) else ""
        if name == "service":
            fields["service"] = dict(child.attrib)
        elif name == "payload":
            fields["payload"] = child[0]
        elif name == "attachments":
            fields["attachments"] = tuple(_attachment(item) for item in child)
        elif name == "fault":
            fields["fault"] = {"code": child.get("code"), "text": child.text or ""}
        elif name in _SCALARS:
            fields[_SCALARS[name]] = child.text or ""
    try:
        if fields["test"] not in ("true", "false", "1", "0"):
            raise ValueError(f"test must be true or false, not {fields['test']!r}")
        fields["test"] = fields["test"] in ("true", "1")
        fields["kind"] = Kind(fields["kind"])
        for key in ("created_at", "expires_at"):
            fields[key] = datetime.fromisoformat(fields[key])
        if "payload" in fields:
            fields["payload"] = _decode_payload(fields["payload"], fields)
        return Envelope.model_validate(fields)
    except (ValueError, ValidationError) as exc:
        raise Malformed(f"envelope: {_first_error(exc)}") from None


_SCALARS = {
    "messageId": "message_id",
    "kind": "kind",
    "sender": "sender",
    "recipient": "recipient",
    "createdAt": "created_at",
    "expiresAt": "expires_at",
    "correlationId": "correlation_id",
    "caseId": "case_id",
    "requestDigest": "request_digest",
    "test": "test",
}


def _attachment(node: Element) -> dict[str, Any]:
    return {
        "name": node.get("name"),
        "media_type": node.get("mediaType"),
        "size": int(size) if (size := node.get("size", "")).isdigit() and size.isascii() else -1,
        "sha256": node.get("sha256"),
        "location": node.get("location"),
    }


def _decode_payload(document: Element, fields: dict[str, Any]) -> dict[str, Any]:
    return payload_from_element(
        document, fields["service"]["code"], fields["service"]["version"], fields["kind"]
    )


def payload_from_element(document: Element, code: str, version: str, kind: Kind) -> dict[str, Any]:
    """Read a service document (``<s:{kind}>`` in the service namespace) as payload data.

    Raises:
        ValueError: not that service's document, or not of the payload shape.
    """
    ns = service_namespace(code, version)
    if document.tag != f"{{{ns}}}{kind.value}":
        raise ValueError(f"payload root must be {{{ns}}}{kind.value}")
    return _decode_object(document, ns)


def _decode_object(node: Element, ns: str) -> dict[str, Any]:
    if node.attrib:
        raise ValueError("payload elements carry no attributes")
    if (node.text or "").strip():
        raise ValueError(f"payload element {node.tag} mixes text and elements")
    result: dict[str, Any] = {}
    for child in node:
        if not child.tag.startswith("{" + ns + "}"):
            raise ValueError(f"payload element {child.tag} is outside the service namespace")
        key = child.tag[len(ns) + 2 :]
        value: Any = _decode_object(child, ns) if len(child) else (child.text or "")
        if len(child) == 0 and child.attrib:
            raise ValueError("payload elements carry no attributes")
        if (child.tail or "").strip():
            raise ValueError(f"text after payload element {key}")
        if key not in result:
            result[key] = value
        elif isinstance(result[key], list):
            result[key].append(value)
        else:
            result[key] = [result[key], value]
    return result


def _first_error(exc: ValueError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        return ": ".join(first_error(exc, "envelope"))
    return str(exc)
