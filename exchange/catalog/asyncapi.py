"""The bus as an AsyncAPI 3.0 document, generated from the catalog and the broker's names.

Channels are the queues of ``transport.topology`` (each party's inbox, dead letters and audit
acknowledgments, the quarantine, the audit queue and quarantine) and the audit feed exchange;
messages are the envelope kinds of each service (request, receipt, status, response, fault,
cancel) with the service's payload schemas. ``exchange services asyncapi`` writes it; the
console serves ``asyncapi_document``'s dict.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from exchange.catalog.catalog import Catalog
from exchange.catalog.model import Service
from exchange.envelope.model import Kind
from exchange.transport.addresses import broker_addresses
from exchange.transport.names import BusNames

ASYNCAPI_VERSION = "3.0.0"
# The service and envelope schemas are JSON Schema 2020-12 documents, given as they are.
SCHEMA_FORMAT = "application/schema+json;version=2020-12"
_AMQP = "0.3.0"  # the AMQP bindings' version
_PROVIDER_RECEIVES = (Kind.REQUEST, Kind.CANCEL)
_CALLER_RECEIVES = (Kind.RECEIPT, Kind.STATUS, Kind.RESPONSE, Kind.FAULT)
_WHAT = {
    Kind.REQUEST: "a request to the provider",
    Kind.RECEIPT: "the provider's signed receipt, bound to the request's digest",
    Kind.STATUS: "how the request is getting on (it stays open)",
    Kind.RESPONSE: "the provider's answer: final",
    Kind.FAULT: "a refusal or failure with a machine code: final",
    Kind.CANCEL: "the requester asks the provider to stop; confirmed by a fault `cancelled`",
}
_STATUS = {
    "type": "object",
    "required": ["state"],
    "additionalProperties": False,
    "properties": {
        "state": {"type": "string", "description": "e.g. in-progress, overdue"},
        "note": {"type": "string"},
    },
}
_FAULT = {
    "type": "object",
    "required": ["code", "text"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,62}$"},
        "text": {"type": "string", "minLength": 1, "maxLength": 4096},
    },
}


def asyncapi_document(
    catalog: Catalog, names: BusNames | None = None, *, broker_url: str | None = None
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the bus of ``catalog`` under ``names``' prefix.

    ``broker_url`` adds the broker as a server (its credentials left out).
    """
    names = names or BusNames()
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Kazan inter-agency exchange bus",
            "version": catalog.data.version,
            "description": (
                "Signed envelopes between the city's departments on RabbitMQ. Every message "
                "is an envelope signed by its sender: XML with an enveloped XML-DSig signature "
                "(application/xml) or a flattened JWS whose payload is the envelope JSON "
                "(application/json). A message's payload schema here is the envelope's "
                "`payload` field; answers carry the request's message_id as correlation_id and "
                "the SHA-256 of the request's exact bytes as request_digest. Every envelope is "
                f"published to the direct exchange `{names.bus}` with the recipient's party id "
                "as routing key, persistent and mandatory, with publisher confirms."
            ),
        },
        "defaultContentType": "application/xml",
        "channels": _channels(catalog, names),
        "operations": _operations(catalog),
        "components": _components(catalog),
    }
    if broker_url is not None:
        document["servers"] = _servers(broker_url)
    return document


def _servers(url: str) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for index, address in enumerate(broker_addresses(url), start=1):
        parts = urlsplit(address)
        host = parts.hostname or "localhost"
        server: dict[str, Any] = {
            "host": f"{host}:{parts.port or 5672}",
            "protocol": parts.scheme,
            "description": "RabbitMQ (each party logs in as its own broker user)",
        }
        if parts.path not in ("", "/"):
            server["pathname"] = parts.path
        servers[f"broker-{index}"] = server
    return servers


def _message_key(service: Service, kind: Kind) -> str:
    return f"{service.code}.{service.version}.{kind.value}"


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _queue(name: str, description: str, messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": name,
        "description": description,
        "messages": messages,
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": name,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                },
                "bindingVersion": _AMQP,
            }
        },
    }


def _inbox_messages(catalog: Catalog, party: str) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for service in catalog.services:
        kinds: tuple[Kind, ...] = ()
        if service.provider == party:
            kinds = _PROVIDER_RECEIVES
        elif party in service.callers:
            kinds = _CALLER_RECEIVES
        for kind in kinds:
            key = _message_key(service, kind)
            messages[key] = _ref("components", "messages", key)
    return messages


def _channels(catalog: Catalog, names: BusNames) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for party in catalog.parties:
        messages = _inbox_messages(catalog, party.id)
        channels[f"{party.id}.inbox"] = _queue(
            names.inbox(party.id),
            f"{party.name}: every envelope addressed to {party.id} (quorum queue, manual acks)",
            messages,
        )
        channels[f"{party.id}.dead-letters"] = _queue(
            names.dead_letters(party.id),
            f"What {party.id}'s inbox dead-lettered after the delivery limit (before it was "
            "stored); `exchange dlq replay` puts it back",
            {key: _ref("components", "messages", key) for key in messages},
        )
        channels[f"{party.id}.audit-acks"] = _queue(
            names.audit_acks(party.id),
            f"The collector's signed head acknowledgments of {party.id}'s audit chain",
            {"audit-ack": _ref("components", "messages", "audit-ack")},
        )
    channels["quarantine"] = _queue(
        names.quarantine,
        "What no node could verify or attribute to a sender; never answered with a fault",
        {"unattributed": _ref("components", "messages", "unattributed")},
    )
    channels["audit"] = _queue(
        names.audit,
        "Every node's signed audit batches, for the central collector",
        {"audit-batch": _ref("components", "messages", "audit-batch")},
    )
    channels["audit.quarantine"] = _queue(
        names.audit_quarantine,
        "Audit batches the collector refused (unsigned, forged, from another broker user)",
        {"audit-batch": _ref("components", "messages", "audit-batch")},
    )
    channels["audit.feed"] = {
        "address": names.audit_feed,
        "description": "The batches the collector stored, unchanged, to whoever follows live",
        "messages": {"audit-batch": _ref("components", "messages", "audit-batch")},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": names.audit_feed,
                    "type": "fanout",
                    "durable": True,
                    "autoDelete": False,
                },
                "bindingVersion": _AMQP,
            }
        },
    }
    return channels


def _send(channel: str, keys: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": "send",
        "channel": _ref("channels", channel),
        "summary": summary,
        "messages": [_ref("channels", channel, "messages", key) for key in keys],
        "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": _AMQP}},
    }


def _operations(catalog: Catalog) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for service in catalog.services:
        inbox = f"{service.provider}.inbox"
        for kind in _PROVIDER_RECEIVES:
            key = _message_key(service, kind)
            operations[f"{key}.send"] = _send(
                inbox, [key], f"{service.title}: {_WHAT[kind]} ({service.provider})"
            )
        for caller in sorted(service.callers):
            keys = [_message_key(service, kind) for kind in _CALLER_RECEIVES]
            operations[f"{service.code}.{service.version}.answer.{caller}"] = _send(
                f"{caller}.inbox", keys, f"{service.provider} answers {caller}'s request"
            )
    for party in catalog.parties:
        channel = f"{party.id}.inbox"
        keys = list(_inbox_messages(catalog, party.id))
        operations[f"{party.id}.receive"] = {
            "action": "receive",
            "channel": _ref("channels", channel),
            "summary": f"{party.id}'s node consumes its inbox: verify, dedupe, store, receipt",
            "messages": [_ref("channels", channel, "messages", key) for key in keys],
        }
    operations["audit.ship"] = _send("audit", ["audit-batch"], "A node ships its audit batch")
    operations["audit.collect"] = {
        "action": "receive",
        "channel": _ref("channels", "audit"),
        "summary": "The collector verifies each batch, stores it, then acks",
        "messages": [_ref("channels", "audit", "messages", "audit-batch")],
    }
    return operations


def _schema(document: dict[str, Any]) -> dict[str, Any]:
    return {"schemaFormat": SCHEMA_FORMAT, "schema": document}


def _components(catalog: Catalog) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "status": _schema({"title": "status payload", **_STATUS}),
        "fault": _schema({"title": "fault", **_FAULT}),
        "none": _schema({"description": "no payload: the envelope's fields say it all"}),
    }
    messages: dict[str, Any] = {}
    for service in catalog.services:
        documents = catalog.schema_documents(service)
        files = catalog.schema_files(service)
        for kind in Kind:
            key = _message_key(service, kind)
            if kind in (Kind.REQUEST, Kind.RESPONSE):
                schemas[key] = _schema(documents[kind])
                payload = _ref("components", "schemas", key)
            else:
                payload = _ref("components", "schemas", _GENERIC[kind])
            message: dict[str, Any] = {
                "name": key,
                "title": f"{service.code} {kind.value}",
                "summary": f"{service.title}: {_WHAT[kind]}",
                "payload": payload,
                "bindings": {"amqp": {"messageType": kind.value, "bindingVersion": _AMQP}},
                "x-envelope-kind": kind.value,
                "x-service": {"code": service.code, "version": service.version},
            }
            if kind in (Kind.REQUEST, Kind.RESPONSE):
                xsd = files[f"{kind.value}.xsd"].relative_to(catalog.schemas_dir)
                message["x-xml-schema"] = xsd.as_posix()
            messages[key] = message
    messages["audit-batch"] = {
        "name": "audit-batch",
        "title": "audit batch",
        "summary": "A party's hash-chained audit records and checkpoints, signed by the party",
        "contentType": "application/json",
        "payload": _ref("components", "schemas", "none"),
    }
    messages["audit-ack"] = {
        "name": "audit-ack",
        "title": "head acknowledgment",
        "summary": "The collector's signed acknowledgment of how far it holds a party's chain",
        "contentType": "application/json",
        "payload": _ref("components", "schemas", "none"),
    }
    messages["unattributed"] = {
        "name": "unattributed",
        "title": "unattributed bytes",
        "summary": "Bytes that did not verify as an envelope of a known sender, kept as found",
        "contentType": "application/octet-stream",
        "payload": _ref("components", "schemas", "none"),
    }
    return {"schemas": schemas, "messages": messages}


_GENERIC = {
    Kind.RECEIPT: "none",
    Kind.STATUS: "status",
    Kind.FAULT: "fault",
    Kind.CANCEL: "none",
}
