"""The city's catalog (exchange/data/): parties, providers, callers, deadlines, schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from exchange._hazmat.xml import parse, serialize
from exchange.codec.xml import payload_element, service_namespace
from exchange.config import Settings
from exchange.envelope.model import Kind
from exchange.exceptions import InvalidContent
from tests.catalog._city import (
    EXAMPLES,
    KINDS,
    REPO,
    city,
    envelope,
    example,
    through_json,
    through_xml,
)

CATALOG = city()
CODES = [service.code for service in CATALOG.services]
CASES = [(code, kind) for code in CODES for kind in KINDS]
XS = "{http://www.w3.org/2001/XMLSchema}"

# DESIGN.md, "Parties and services" and "Decisions" -> Deadlines.
PARTIES = {"single-center", "land-property", "architecture", "improvement", "urban-permits"}
PROVIDERS = {
    "architectural-appearance": "architecture",
    "signage-project": "architecture",
    "excavation-permit": "urban-permits",
    "tree-felling-permit": "improvement",
    "stormwater-conditions": "improvement",
    "land-plot-info": "land-property",
    "urban-plan-extract": "urban-permits",
}
CITIZEN_SERVICES = [
    "architectural-appearance",
    "signage-project",
    "excavation-permit",
    "tree-felling-permit",
    "stormwater-conditions",
]
CALLERS = {
    **{code: {"single-center"} for code in CITIZEN_SERVICES},
    "land-plot-info": {"single-center", "architecture", "improvement", "urban-permits"},
    "urban-plan-extract": {"single-center", "architecture", "improvement"},
}


class TestContents:
    """What the catalog says matches DESIGN.md."""

    def test_is_the_default_catalog(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without EXCHANGE_CATALOG a node loads the city's catalog and schemas."""
        monkeypatch.delenv("EXCHANGE_CATALOG", raising=False)
        monkeypatch.delenv("EXCHANGE_SCHEMAS_DIR", raising=False)
        assert Settings().catalog == REPO / "exchange/data/catalog.toml"
        assert Settings().schemas_dir == REPO / "exchange/data/schemas"

    def test_the_five_parties(self) -> None:
        """The five departments of the seed, and no one else."""
        assert {party.id for party in CATALOG.parties} == PARTIES
        assert all(party.name for party in CATALOG.parties)

    def test_every_department_names_its_adapter(self) -> None:
        """The catalog is the list of adapters: adapters.<party with underscores>."""
        for party in CATALOG.parties:
            assert party.adapter == "adapters." + party.id.replace("-", "_")

    def test_start_order(self) -> None:
        """Data providers first, the front office last: each after those it asks."""
        assert [p.id for p in CATALOG.start_order] == [
            "land-property",
            "urban-permits",
            "architecture",
            "improvement",
            "single-center",
        ]

    def test_providers_as_decided(self) -> None:
        """Every service has the provider DESIGN.md's Decisions give, and there are seven."""
        assert {s.code: s.provider for s in CATALOG.services} == PROVIDERS

    def test_callers(self) -> None:
        """Citizen services are filed at the Single Center; data services serve departments."""
        assert {s.code: set(s.callers) for s in CATALOG.services} == CALLERS

    def test_tree_felling_is_fourteen_calendar_days(self) -> None:
        """The seed's year-end target for felling permits."""
        deadline = CATALOG.service("tree-felling-permit").deadline
        assert (deadline.days, deadline.working_days) == (14, False)

    def test_every_service_has_a_deadline(self) -> None:
        """Deadlines are set for all; the data services answer within 5 working days."""
        for service in CATALOG.services:
            assert 0 < service.deadline.days <= 30, service.code
        for code in ("land-plot-info", "urban-plan-extract"):
            deadline = CATALOG.service(code).deadline
            assert (deadline.days, deadline.working_days) == (5, True)


@pytest.mark.parametrize(("code", "kind"), CASES)
class TestSchemas:
    """Each service's XSD and JSON Schema describe the payload document the codec writes."""

    def test_xsd_root_and_namespace(self, code: str, kind: Kind) -> None:
        """Root element ``request``/``response`` in the service namespace, qualified children."""
        service = CATALOG.service(code)
        path = CATALOG.schema_files(service)[f"{kind.value}.xsd"]
        root = parse(path.read_bytes(), max_size=1 << 20)
        assert root.get("targetNamespace") == service_namespace(code, service.version)
        assert root.get("elementFormDefault") == "qualified"
        tops = [child.get("name") for child in root.iterchildren(f"{XS}element")]
        assert tops == [kind.value]
        assert not list(root.iter(f"{XS}attribute")), "payload elements carry no attributes"

    def test_json_schema_closed_and_titled(self, code: str, kind: Kind) -> None:
        """A closed object schema of draft 2020-12, whose property order the XSD follows."""
        document = json.loads(
            CATALOG.schema_files(CATALOG.service(code))[f"{kind.value}.schema.json"].read_text()
        )
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["type"] == "object"
        assert document["additionalProperties"] is False
        assert document["title"] == f"{code} 1 {kind.value}"

    def test_example_is_valid_in_both_formats(self, code: str, kind: Kind) -> None:
        """The example passes the JSON Schema, and encoded to XML by the codec, the XSD."""
        value = envelope(CATALOG.service(code), kind, example(code, kind))
        CATALOG.check_payload(value, xml=False)
        CATALOG.check_payload(value, xml=True)
        CATALOG.check_payload(through_xml(value), xml=True)

    def test_xml_round_trip_gives_the_typed_payload(self, code: str, kind: Kind) -> None:
        """Typed payload -> XML envelope -> bytes -> decode -> typed == the payload."""
        payload = example(code, kind)
        received = through_xml(envelope(CATALOG.service(code), kind, payload))
        assert CATALOG.typed(received).payload == payload
        assert list(CATALOG.typed(received).payload or {}) == list(payload)

    def test_json_round_trip_is_unchanged(self, code: str, kind: Kind) -> None:
        """A JSON envelope already carries the typed payload; typing changes nothing."""
        payload = example(code, kind)
        received = through_json(envelope(CATALOG.service(code), kind, payload))
        assert CATALOG.typed(received).payload == payload

    def test_keys_in_any_order_are_sent_in_the_xsd_order(self, code: str, kind: Kind) -> None:
        """A typed payload with its keys reversed still fits the XSD once typed for sending."""
        payload = _reversed(example(code, kind))
        value = CATALOG.typed(envelope(CATALOG.service(code), kind, payload))
        CATALOG.check_payload(value, xml=True)
        assert value.payload == example(code, kind)


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed(value[key]) for key in reversed(value)}
    if isinstance(value, list):
        return [_reversed(item) for item in value]
    return value


def test_every_service_has_examples() -> None:
    """Each service of the catalog has an example request and response, and nothing else does."""
    folders = {path.name for path in EXAMPLES.iterdir() if path.is_dir()}
    assert folders == set(CODES)


INVALID: list[dict[str, Any]] = json.loads((EXAMPLES / "invalid.json").read_text())


@pytest.mark.parametrize("wire_xml", [True, False], ids=["xml", "json"])
@pytest.mark.parametrize(
    "case", INVALID, ids=[f"{c['service']}-{c['kind']}-{c['field']}" for c in INVALID]
)
def test_invalid_examples_are_rejected_naming_the_field(
    case: dict[str, Any], wire_xml: bool
) -> None:
    """A broken example is refused in both formats with invalid-content naming the field."""
    kind = Kind(case["kind"])
    payload = _broken(example(case["service"], kind), case)
    value = envelope(CATALOG.service(case["service"]), kind, payload)
    with pytest.raises(InvalidContent) as info:
        CATALOG.check_payload(through_xml(value) if wire_xml else value, xml=wire_xml)
    assert info.value.code == "invalid-content"
    assert case["field"] in info.value.message


@pytest.mark.parametrize(
    "case", INVALID, ids=[f"{c['service']}-{c['kind']}-{c['field']}" for c in INVALID]
)
def test_a_received_document_is_checked_as_it_is(case: dict[str, Any]) -> None:
    """The signed payload document is checked, not the envelope, and named in any namespace."""
    kind = Kind(case["kind"])
    service, payload = CATALOG.service(case["service"]), example(case["service"], kind)
    good, broken = envelope(service, kind, payload), envelope(service, kind, _broken(payload, case))
    # A sender may put the payload in a default namespace instead of our "s:" prefix.
    text = serialize(payload_element(through_xml(broken))).decode()
    text = text.replace("xmlns:s=", "xmlns=").replace("<s:", "<").replace("</s:", "</")
    document = parse(text.encode(), max_size=1 << 20)
    with pytest.raises(InvalidContent) as info:
        CATALOG.check_payload(good, xml=True, document=document)
    assert case["field"] in info.value.message


def _broken(payload: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(payload)
    for path, new in case.get("set", {}).items():
        *parents, last = path.split(".")
        _at(broken, parents)[last] = new
    if "remove" in case:
        *parents, last = case["remove"].split(".")
        del _at(broken, parents)[last]
    return broken


def _at(value: Any, steps: list[str]) -> Any:
    for step in steps:
        value = value[int(step)] if isinstance(value, list) else value[step]
    return value
