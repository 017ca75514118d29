"""Typed payloads: XML's strings and lone items take the shape the service's JSON Schema gives."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.catalog.typed import resolve_ref, typed_value
from exchange.envelope.model import Kind, ServiceRef
from tests.catalog._city import city, envelope, example, through_xml

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "flag": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "day": {"type": "string", "format": "date"},
        "code": {"type": "string"},
        "state": {"enum": [1, 2, 3]},
        "nested": {"type": "object", "properties": {"n": {"type": "integer"}}},
    },
    "$defs": {"Item": {"type": "object", "properties": {"size": {"type": "integer"}}}},
}


def typed(value: Any) -> Any:
    """``value`` typed against the test schema."""
    return typed_value(value, SCHEMA, SCHEMA)


class TestScalars:
    """XML text becomes the scalar the schema declares."""

    @pytest.mark.parametrize(
        ("text", "number"), [("7", 7), ("+7", 7), ("-3", -3), ("007", 7), (" 12\n", 12)]
    )
    def test_integers(self, text: str, number: int) -> None:
        """XSD integer lexical forms (whitespace collapsed) become Python ints."""
        assert typed({"count": text}) == {"count": number}

    @pytest.mark.parametrize("text", ["x1", "1.5", "1_000", "", "١٢"])
    def test_not_an_integer_is_left_for_the_schema(self, text: str) -> None:
        """What is no XSD integer stays a string, for the schema check to name."""
        assert typed({"count": text}) == {"count": text}

    def test_an_integer_beyond_pythons_digit_limit_stays_text(self) -> None:
        """A 5000-digit number does not raise; it stays text."""
        assert typed({"count": "9" * 5000}) == {"count": "9" * 5000}

    @pytest.mark.parametrize(
        ("text", "value"), [("true", True), ("1", True), ("false", False), (" 0 ", False)]
    )
    def test_booleans(self, text: str, value: bool) -> None:
        """xs:boolean's four spellings become True or False."""
        assert typed({"flag": text}) == {"flag": value}

    def test_not_a_boolean_is_left(self) -> None:
        """``yes`` is no xs:boolean; it stays as it is."""
        assert typed({"flag": "yes"}) == {"flag": "yes"}

    def test_dates_are_collapsed_like_xsd_does(self) -> None:
        """xs:date collapses whitespace, so the typed date has none."""
        assert typed({"day": " 2026-05-01\n"}) == {"day": "2026-05-01"}

    def test_strings_keep_their_whitespace(self) -> None:
        """A plain string is exactly its XML text."""
        assert typed({"code": " a "}) == {"code": " a "}

    def test_numbers_given_for_strings_become_their_xml_text(self) -> None:
        """A sender's int or bool for a string field becomes what XML would carry."""
        assert typed({"code": 5}) == {"code": "5"}
        assert typed({"code": True}) == {"code": "true"}

    def test_enum_without_type_infers_it(self) -> None:
        """An integer enum without ``type`` is typed as integer."""
        assert typed({"state": "2"}) == {"state": 2}


class TestStructure:
    """Lists, objects and key order."""

    def test_a_lone_item_becomes_a_list(self) -> None:
        """The codec reads a one-item list back as the item; the schema says array."""
        assert typed({"tags": "a"}) == {"tags": ["a"]}
        assert typed({"items": {"size": "3"}}) == {"items": [{"size": 3}]}

    def test_lists_are_typed_item_by_item(self) -> None:
        """Each item of a list is typed by ``items`` (through ``$ref``)."""
        assert typed({"items": [{"size": "1"}, {"size": "2"}]}) == {
            "items": [{"size": 1}, {"size": 2}]
        }

    def test_an_empty_element_is_an_empty_object(self) -> None:
        """``<nested/>`` decodes to ``""``; the schema says object."""
        assert typed({"nested": ""}) == {"nested": {}}

    def test_keys_take_the_schema_order_and_unknown_keys_stay_last(self) -> None:
        """Known keys in ``properties`` order (the XSD sequence), others after, untouched."""
        result = typed({"zzz": "1", "flag": "true", "count": "1"})
        assert list(result) == ["count", "flag", "zzz"]
        assert result["zzz"] == "1"

    def test_typed_data_is_unchanged(self) -> None:
        """Typing is idempotent: a JSON payload comes back equal."""
        data = {"count": 3, "flag": False, "tags": ["a", "b"], "nested": {"n": 1}}
        assert typed(data) == data
        assert typed(typed(data)) == data

    def test_values_of_the_wrong_shape_are_left(self) -> None:
        """Text where an object belongs is not guessed at."""
        assert typed({"nested": "text"}) == {"nested": "text"}


class TestResolveRef:
    """Local references."""

    def test_siblings_win_over_the_target(self) -> None:
        """``description`` beside a ``$ref`` is kept; the target supplies the rest."""
        root = {"$defs": {"A": {"type": "string", "description": "target"}}}
        resolved = resolve_ref({"$ref": "#/$defs/A", "description": "here"}, root)
        assert resolved == {"type": "string", "description": "here"}

    def test_a_reference_loop_ends(self) -> None:
        """A schema that refers to itself does not hang."""
        root: dict[str, Any] = {"$defs": {"A": {"$ref": "#/$defs/A"}}}
        assert "$ref" in resolve_ref({"$ref": "#/$defs/A"}, root)


class TestCatalog:
    """The catalog types envelopes by their service's schema."""

    def test_xml_decoding_loses_types_and_typing_restores_them(self) -> None:
        """Over XML, counts are text and a single tree is no list; typed, it is the example."""
        catalog = city()
        payload = example("tree-felling-permit", Kind.REQUEST)
        payload["shrubs"] = payload["shrubs"][:1]
        received = through_xml(
            envelope(catalog.service("tree-felling-permit"), Kind.REQUEST, payload)
        )
        assert received.payload is not None
        assert received.payload["shrubs"] == {"species": "lilac", "count": "3"}
        assert received.payload["compensatory_planting"] == "true"
        assert catalog.typed(received).payload == payload

    def test_other_kinds_and_unknown_services_are_left_alone(self) -> None:
        """Statuses have no schema; an unknown service's payload is returned as it is."""
        catalog = city()
        assert catalog.typed_payload(
            ServiceRef(code="nope", version="1"), Kind.REQUEST, {"a": "1"}
        ) == {"a": "1"}
        status = envelope(catalog.service("land-plot-info"), Kind.RESPONSE, {"state": "1"})
        status = status.model_copy(update={"kind": Kind.STATUS})
        assert catalog.typed(status) is status
