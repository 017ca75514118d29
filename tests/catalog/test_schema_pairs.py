"""Each service's XSD and JSON Schema describe the same document: they accept the same changes.

Every example is changed one field at a time (removed, given a wrong type, an unknown value,
a value out of range, too many items, an unknown key). The XML path (the codec's XML, checked
against the XSD) and the JSON path (the same document decoded and typed, checked against the
JSON Schema) must agree on each change: both accept it or both refuse it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from exchange.catalog.typed import resolve_ref
from exchange.envelope.model import Kind
from exchange.exceptions import InvalidContent
from tests.catalog._city import KINDS, city, envelope, example, through_xml

CATALOG = city()
CASES = [(service.code, kind) for service in CATALOG.services for kind in KINDS]

Path = tuple[str | int, ...]


def _wrong_values(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    kind = schema.get("type")
    if kind == "integer":
        yield "not a number", "x1"
        yield "a fraction", "1.5"
        yield "below minimum", schema["minimum"] - 1
        yield "above maximum", schema["maximum"] + 1
        yield "at minimum", schema["minimum"]
        yield "at maximum", schema["maximum"]
    elif kind == "boolean":
        yield "not a boolean", "maybe"
        yield "numeric false", "0"
    elif kind == "string":
        yield "empty", ""
        if "enum" in schema:
            yield "not listed", "not-listed"
        if "pattern" in schema:
            yield "off pattern", "bad value!"
        if schema.get("format") == "date":
            yield "no such day", "2026-02-30"
            yield "with a time zone", "2026-03-01Z"
        if "maxLength" in schema:
            yield "too long", "x" * (schema["maxLength"] + 1)
            yield "longest", "x" * schema["maxLength"]


def _changes(
    payload: Any, schema: Mapping[str, Any], root: Mapping[str, Any], path: Path = ()
) -> Iterator[tuple[str, Path, Any]]:
    """(what, where, new value or the REMOVE marker) for every field of an example."""
    schema = resolve_ref(schema, root)
    if schema.get("type") == "object" and isinstance(payload, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in payload:
                yield "removed", (*path, key), REMOVE
                yield from _changes(payload[key], sub, root, (*path, key))
        yield "unknown key added", (*path, "unknown_key"), "x"
        if path:
            yield "text for an object", path, "text"
    elif schema.get("type") == "array" and isinstance(payload, list):
        yield "too many items", path, payload * (schema["maxItems"] // len(payload) + 1)
        yield "most items", path, (payload * schema["maxItems"])[: schema["maxItems"]]
        for index, item in enumerate(payload):
            yield from _changes(item, schema.get("items", {}), root, (*path, index))
    else:
        for what, value in _wrong_values(schema):
            yield what, path, value


REMOVE = object()


def _changed(payload: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(payload)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    if value is REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


def _accepted(check: Any) -> bool:
    try:
        check()
    except InvalidContent:
        return False
    return True


@pytest.mark.parametrize(("code", "kind"), CASES)
def test_xsd_and_json_schema_agree_on_every_change(code: str, kind: Kind) -> None:
    """For every one-field change of the example, XSD and JSON Schema give the same verdict."""
    service = CATALOG.service(code)
    document = CATALOG.schema_documents(service)[kind]
    payload = example(code, kind)
    disagreements = []
    changes = list(_changes(payload, document, document))
    assert len(changes) >= 4
    for what, path, value in changes:
        received = through_xml(envelope(service, kind, _changed(payload, path, value)))
        by_xsd = _accepted(lambda r=received: CATALOG.check_payload(r, xml=True))
        typed = CATALOG.typed(received)
        by_json = _accepted(lambda t=typed: CATALOG.check_payload(t, xml=False))
        if by_xsd != by_json:
            disagreements.append(f"{'.'.join(map(str, path))} {what}: xsd={by_xsd} json={by_json}")
    assert disagreements == []
