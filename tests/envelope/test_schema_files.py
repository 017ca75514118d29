"""The schema files in ``exchange/data/schemas/`` describe exactly what the codecs write."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exchange._hazmat.xml import load_schema, parse, serialize
from exchange.codec.xml import decode_xml, encode_xml
from exchange.envelope.model import Attachment, Envelope, Fault, Kind
from exchange.pki.credentials import Credentials
from exchange.signing import WireFormat, seal
from exchange.testing import ThrowawayPKI, make_envelope

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "exchange/data/schemas"
JSON_SCHEMA = SCHEMAS / "envelope.schema.json"
GENERATOR = REPO / "scripts" / "gen_json_schema.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_json_schema", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def samples() -> list[Envelope]:
    """Envelopes that use every field of the model between them."""
    answer: dict[str, Any] = {"correlation_id": "req-1", "request_digest": "a" * 64}
    attachment = Attachment(
        name="drawing 1.dwg",
        media_type="image/vnd.dwg",
        size=123456,
        sha256="b" * 64,
        location="sha256:" + "b" * 64,
    )
    return [
        make_envelope(),
        make_envelope(payload=None, case_id=None),
        make_envelope(test=True, attachments=(attachment, attachment)),
        make_envelope(kind=Kind.RECEIPT, payload=None, **answer),
        make_envelope(kind=Kind.STATUS, payload={"status": "in-review"}, **answer),
        make_envelope(kind=Kind.RESPONSE, attachments=(attachment,), **answer),
        make_envelope(kind=Kind.CANCEL, payload=None, **answer),
        make_envelope(
            kind=Kind.FAULT,
            payload=None,
            fault=Fault(code="access-denied", text="Нет доступа к услуге"),
            **answer,
        ),
    ]


def test_json_schema_file_is_current() -> None:
    """The packaged envelope.schema.json equals what scripts/gen_json_schema.py generates."""
    generator = _generator()
    expected = generator.render()
    assert JSON_SCHEMA.read_text(encoding="utf-8") == expected, (
        "exchange/data/schemas/envelope.schema.json is stale: run python scripts/gen_json_schema.py"
    )


def test_json_schema_is_generated_from_the_model() -> None:
    """The file is the model's serialization schema plus $schema, $id and title."""
    committed = json.loads(JSON_SCHEMA.read_text(encoding="utf-8"))
    generated = Envelope.model_json_schema(mode="serialization")
    assert committed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert committed["$id"] == "urn:kazan:exchange:envelope:1"
    assert committed["title"]
    for key in ("$defs", "properties", "required", "additionalProperties", "type"):
        assert committed.get(key) == generated.get(key), key
    assert committed["additionalProperties"] is False
    assert set(committed["properties"]) == set(Envelope.model_fields)


def test_generator_check_mode() -> None:
    """``gen_json_schema.py --check`` passes on the committed file."""
    assert _generator().main(["--check"]) == 0


@pytest.mark.parametrize("envelope", samples(), ids=lambda e: e.kind.value)
def test_xsd_accepts_encoded_envelopes(envelope: Envelope) -> None:
    """The packaged envelope.xsd accepts what encode_xml writes; decode_xml reads it back."""
    schema = load_schema(SCHEMAS / "envelope.xsd")
    root = encode_xml(envelope)
    assert schema.validate(root), schema.error_log
    reparsed = parse(serialize(root), max_size=1024 * 1024)
    assert schema.validate(reparsed), schema.error_log
    assert decode_xml(reparsed) == envelope


@pytest.mark.parametrize("envelope", samples(), ids=lambda e: e.kind.value)
def test_xsd_accepts_signed_envelopes(envelope: Envelope, pki: ThrowawayPKI) -> None:
    """The XSD's slot for ds:Signature admits the enveloped signature seal() adds."""
    schema = load_schema(SCHEMAS / "envelope.xsd")
    credentials: Credentials = pki.credentials(envelope.sender)
    root = parse(seal(envelope, credentials, WireFormat.XML), max_size=1024 * 1024)
    assert schema.validate(root), schema.error_log
