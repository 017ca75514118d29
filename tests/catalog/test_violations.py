"""A payload that breaks its schema: every violation listed, with a JSON path or an XPath."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from exchange.envelope.model import Kind
from exchange.exceptions import InvalidContent
from tests.catalog._city import city, envelope, through_xml

CATALOG = city()
SERVICE = CATALOG.service("tree-felling-permit")
EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "examples/payloads/tree-felling-permit.json").read_text()
)


def refused(payload: dict[str, Any], *, xml: bool) -> InvalidContent:
    """The InvalidContent the catalog raises for ``payload`` in one format."""
    value = envelope(SERVICE, Kind.REQUEST, payload)
    with pytest.raises(InvalidContent) as info:
        CATALOG.check_payload(through_xml(value) if xml else value, xml=xml)
    return info.value


def test_json_lists_every_violation_with_its_json_path() -> None:
    """Three problems, three entries: a bad value, a missing field, an unknown field."""
    payload = copy.deepcopy(EXAMPLE)
    payload["trees"][0]["count"] = 0
    del payload["address"]
    payload["colour"] = "green"
    error = refused(payload, xml=False)
    assert error.code == "invalid-content"
    assert "in 3 places" in error.message
    assert "$.trees[0].count: 0 is less than the minimum of 1" in error.message
    assert "$.address: missing: this field is required" in error.message
    assert "$: unknown field(s) colour: not allowed here" in error.message
    violations = error.data["violations"]
    assert isinstance(violations, list)
    assert [v["path"] for v in violations] == ["$.address", "$.trees[0].count", "$"]


def test_xml_lists_violations_with_an_xpath_in_plain_words() -> None:
    """Two bad values in the XML document: both named by XPath, without libxml2's namespaces."""
    payload = copy.deepcopy(EXAMPLE)
    payload["trees"][0]["count"] = 0
    payload["applicant"]["phone"] = "call me"
    error = refused(payload, xml=True)
    assert "in 2 places" in error.message
    assert "/request/applicant/phone: The value 'call me' is not accepted by the pattern" in (
        error.message
    )
    assert "/request/trees[1]/count: " in error.message
    assert "{urn:" not in error.message
    assert "[facet" not in error.message


def test_one_violation_is_one_place() -> None:
    """The count reads as people write it."""
    payload = copy.deepcopy(EXAMPLE)
    payload["reason"] = "whim"
    assert "in 1 place: $.reason: " in refused(payload, xml=False).message
