"""The AsyncAPI document of the bus: valid against the official AsyncAPI 3.0 JSON Schema, and
true to the catalog and the topology."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from exchange.catalog import Catalog
from exchange.catalog.asyncapi import asyncapi_document
from exchange.cli import app
from exchange.config import packaged
from exchange.transport.names import BusNames

REPO = Path(__file__).resolve().parents[2]
# Fetched by `make setup` (npm @asyncapi/specs, version pinned in the Makefile), not copied.
OFFICIAL = REPO / ".cache/asyncapi-specs/package/schemas/3.0.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    """The official AsyncAPI 3.0 schema (draft-07); its $refs name the $ids of its own
    definitions, which the validator finds inside it."""
    assert OFFICIAL.is_file(), f"{OFFICIAL} is missing: run `make setup` (it fetches it with npm)"
    schema = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The city's catalog."""
    return Catalog.load(packaged("catalog.toml"), packaged("schemas"))


def errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    """Every violation of the official schema, as path: message."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_the_document_is_valid_asyncapi_3(
    validator: jsonschema.Draft7Validator, catalog: Catalog
) -> None:
    """The city's document passes the official AsyncAPI 3.0 schema."""
    document = asyncapi_document(catalog, BusNames("kzn."), broker_url="amqp://u:p@mq:5672/kzn")
    assert errors(validator, document) == []


def test_the_validator_sees_a_broken_document(
    validator: jsonschema.Draft7Validator, catalog: Catalog
) -> None:
    """Breaks deep inside (an action, an address, a content type) are found where they are."""
    document = asyncapi_document(catalog)
    document["operations"]["improvement.receive"]["action"] = "publish"
    document["channels"]["quarantine"]["address"] = 5
    document["components"]["messages"]["audit-ack"]["contentType"] = 7
    found = {line.split(":")[0] for line in errors(validator, document)}
    assert found == {
        "operations/improvement.receive",
        "channels/quarantine",
        "components/messages/audit-ack",
    }


def test_channels_are_the_topologys_queues(catalog: Catalog) -> None:
    """Each department's inbox, dead letters and acks, the quarantine and the audit queues."""
    names = BusNames("t1.")
    document = asyncapi_document(catalog, names)
    addresses = {channel["address"] for channel in document["channels"].values()}
    for party in catalog.parties:
        assert names.inbox(party.id) in addresses
        assert names.dead_letters(party.id) in addresses
        assert names.audit_acks(party.id) in addresses
    assert {names.quarantine, names.audit, names.audit_quarantine, names.audit_feed} <= addresses


def test_each_inbox_takes_what_its_party_may_receive(catalog: Catalog) -> None:
    """A provider's inbox takes requests and cancels of its services; a caller's the answers."""
    document = asyncapi_document(catalog)
    inbox = document["channels"]["improvement.inbox"]["messages"]
    assert "tree-felling-permit.1.request" in inbox
    assert "tree-felling-permit.1.cancel" in inbox
    assert "tree-felling-permit.1.response" not in inbox
    center = document["channels"]["single-center.inbox"]["messages"]
    assert {"tree-felling-permit.1.receipt", "tree-felling-permit.1.response"} <= set(center)
    assert "tree-felling-permit.1.request" not in center


def test_payload_schemas_are_the_catalogs(catalog: Catalog) -> None:
    """Each service's request and response payload is its JSON Schema, as the catalog has it."""
    document = asyncapi_document(catalog)
    schemas = document["components"]["schemas"]
    for service in catalog.services:
        documents = catalog.schema_documents(service)
        for kind in ("request", "response"):
            key = f"{service.code}.{service.version}.{kind}"
            assert schemas[key]["schema"] == documents[kind], key  # type: ignore[index]
    kinds = {
        m["x-envelope-kind"]
        for m in document["components"]["messages"].values()
        if "x-envelope-kind" in m
    }
    assert kinds == {"request", "receipt", "status", "response", "fault", "cancel"}


def test_every_reference_resolves(catalog: Catalog) -> None:
    """Every local $ref in the document points at something in it."""
    document = asyncapi_document(catalog)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(document):
        if not ref.startswith("#/"):
            continue  # a service schema's own #/$defs refs start with #/$defs and are inside it
        target: Any = document
        for step in ref[2:].split("/"):
            if step == "$defs":
                break
            target = target[step]
        assert target is not None, ref


def test_cli_writes_yaml_and_json(tmp_path: Path, validator: jsonschema.Draft7Validator) -> None:
    """`exchange services asyncapi` writes YAML or JSON (by suffix or --format), both valid."""
    runner = CliRunner()
    yaml_out = tmp_path / "bus.yaml"
    json_out = tmp_path / "bus.json"
    assert runner.invoke(app, ["services", "asyncapi", "--output", str(yaml_out)]).exit_code == 0
    assert runner.invoke(app, ["services", "asyncapi", "-o", str(json_out)]).exit_code == 0
    from_yaml = yaml.safe_load(yaml_out.read_text(encoding="utf-8"))
    from_json = json.loads(json_out.read_text(encoding="utf-8"))
    assert from_yaml == from_json
    assert errors(validator, from_json) == []
    printed = runner.invoke(app, ["services", "asyncapi", "--format", "json"])
    assert json.loads(printed.stdout)["asyncapi"] == "3.0.0"
    refused = runner.invoke(app, ["services", "asyncapi", "--format", "xml"])
    assert refused.exit_code == 1
    assert "config-error" in refused.stderr
