"""Helpers of the catalog tests: the city catalog, its examples, envelopes that carry them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exchange._hazmat.xml import parse, serialize
from exchange.catalog import Catalog, Service
from exchange.codec import decode_json, decode_xml, encode_json, encode_xml
from exchange.envelope.model import Envelope, Kind, ServiceRef
from exchange.testing import make_envelope

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "data" / "examples"
KINDS = (Kind.REQUEST, Kind.RESPONSE)


def city() -> Catalog:
    """The city's catalog as a node loads it by default."""
    return Catalog.load(REPO / "exchange/data/catalog.toml", REPO / "exchange/data/schemas")


def example(code: str, kind: Kind) -> dict[str, Any]:
    """The example payload of a service's request or response (typed, as JSON carries it)."""
    data: dict[str, Any] = json.loads((EXAMPLES / code / f"{kind.value}.json").read_text())
    return data


def envelope(service: Service, kind: Kind, payload: dict[str, Any]) -> Envelope:
    """A request from a caller to the provider, or the provider's response to it."""
    caller = sorted(service.callers)[0]
    fields: dict[str, Any] = {
        "service": ServiceRef(code=service.code, version=service.version),
        "payload": payload,
    }
    if kind is Kind.REQUEST:
        return make_envelope(sender=caller, recipient=service.provider, **fields)
    return make_envelope(
        kind=Kind.RESPONSE,
        sender=service.provider,
        recipient=caller,
        correlation_id="request-1",
        request_digest="a" * 64,
        **fields,
    )


def through_xml(value: Envelope) -> Envelope:
    """The envelope encoded to XML bytes and decoded again, as a receiving node reads it."""
    return decode_xml(parse(serialize(encode_xml(value)), max_size=1 << 20))


def through_json(value: Envelope) -> Envelope:
    """The envelope encoded to JSON bytes and decoded again."""
    return decode_json(encode_json(value))
