"""examples/: the unsigned envelopes and request payloads fit the schemas they claim to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from exchange._hazmat.xml import parse
from exchange.catalog import Catalog
from exchange.cli.envelopes import read_unsigned
from exchange.config import packaged
from exchange.envelope.model import Kind
from exchange.signing import WireFormat
from tests.catalog._city import envelope, through_xml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CATALOG = Catalog.load(packaged("catalog.toml"), packaged("schemas"))
CODES = sorted(service.code for service in CATALOG.services)


@pytest.mark.parametrize("name", ["request.xml", "request.json"])
def test_unsigned_envelopes_decode_as_unsigned_requests(name: str) -> None:
    """Each example envelope is an unsigned request that `exchange sign` accepts."""
    value, wire_format = read_unsigned((EXAMPLES / "envelopes" / name).read_bytes(), 1 << 20)
    assert wire_format is (WireFormat.XML if name.endswith(".xml") else WireFormat.JSON)
    assert value.kind is Kind.REQUEST
    assert value.expires_at.year >= 2036  # signable for years, not just on the day it was made
    CATALOG.check_payload(value, xml=wire_format is WireFormat.XML)


def test_json_envelope_fits_the_envelope_json_schema() -> None:
    """examples/envelopes/request.json validates against schemas/envelope.schema.json."""
    schema = json.loads((packaged("schemas") / "envelope.schema.json").read_text())
    document = json.loads((EXAMPLES / "envelopes" / "request.json").read_text())
    errors = [error.message for error in jsonschema_rs.validator_for(schema).iter_errors(document)]
    assert errors == []


def test_xml_envelope_is_well_formed_for_the_hardened_parser() -> None:
    """examples/envelopes/request.xml parses with no DOCTYPE, comments or PIs."""
    root = parse((EXAMPLES / "envelopes" / "request.xml").read_bytes(), max_size=1 << 20)
    assert root.tag == "{urn:kazan:exchange:envelope:1}envelope"


def test_a_payload_per_service_of_the_catalog() -> None:
    """examples/payloads/ has one request payload per catalog service, and nothing else."""
    assert sorted(path.stem for path in (EXAMPLES / "payloads").glob("*.json")) == CODES


@pytest.mark.parametrize("wire_xml", [False, True], ids=["json", "xml"])
@pytest.mark.parametrize("code", CODES)
def test_payloads_fit_their_service_request_schema(code: str, wire_xml: bool) -> None:
    """Each payload passes its service's request schema, as JSON and as XML."""
    payload: dict[str, Any] = json.loads((EXAMPLES / "payloads" / f"{code}.json").read_text())
    value = envelope(CATALOG.service(code), Kind.REQUEST, payload)
    CATALOG.check_payload(through_xml(value) if wire_xml else value, xml=wire_xml)
