"""The envelope model's rules: each broken rule is a pydantic ValidationError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from pydantic import ValidationError

from exchange.envelope.model import Envelope, Fault, Kind
from exchange.testing import make_envelope

DIGEST = "ab" * 32
NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def answer(kind: Kind, **fields: Any) -> Envelope:
    """A valid answer of ``kind`` from ``improvement`` to ``single-center``."""
    values: dict[str, Any] = {
        "kind": kind,
        "sender": "improvement",
        "recipient": "single-center",
        "correlation_id": "req-1",
        "request_digest": DIGEST,
        "payload": None,
    }
    if kind is Kind.FAULT:
        values["fault"] = Fault(code="access-denied", text="not allowed")
    values.update(fields)
    return make_envelope(**values)


def nested(depth: int) -> dict[str, Any]:
    """A payload of ``depth`` nested objects."""
    payload: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth - 1):
        payload = {"level": payload}
    return payload


def test_defaults_are_valid() -> None:
    """The helper's request and an answer of every kind are valid envelopes."""
    assert make_envelope().kind is Kind.REQUEST
    for kind in Kind:
        if kind is not Kind.REQUEST:
            assert answer(kind).kind is kind


def test_expires_at_equal_to_created_at() -> None:
    """expires_at == created_at is refused."""
    with pytest.raises(ValidationError, match="expires_at must be after created_at"):
        make_envelope(created_at=NOW, expires_at=NOW)


def test_expires_at_before_created_at() -> None:
    """expires_at before created_at is refused."""
    with pytest.raises(ValidationError, match="expires_at must be after created_at"):
        make_envelope(created_at=NOW, expires_at=NOW - timedelta(seconds=1))


def test_sender_equals_recipient() -> None:
    """An envelope to oneself is refused."""
    with pytest.raises(ValidationError, match="sender and recipient must differ"):
        make_envelope(recipient="single-center")


@pytest.mark.parametrize(
    "fields", [{"correlation_id": "req-1"}, {"request_digest": DIGEST}], ids=["corr", "digest"]
)
def test_request_carrying_answer_fields(fields: dict[str, Any]) -> None:
    """A request carries neither correlation_id nor request_digest."""
    with pytest.raises(ValidationError, match="a request carries neither"):
        make_envelope(**fields)


@pytest.mark.parametrize("kind", [kind for kind in Kind if kind is not Kind.REQUEST])
@pytest.mark.parametrize("missing", ["correlation_id", "request_digest"])
def test_answer_without_binding(kind: Kind, missing: str) -> None:
    """Every answer kind needs both correlation_id and request_digest."""
    with pytest.raises(ValidationError, match="must carry correlation_id and request_digest"):
        answer(kind, **{missing: None})


def test_fault_kind_without_fault() -> None:
    """kind 'fault' without a fault is refused."""
    with pytest.raises(ValidationError, match="fault is required on, and only on"):
        answer(Kind.FAULT, fault=None)


@pytest.mark.parametrize("kind", [kind for kind in Kind if kind is not Kind.FAULT])
def test_fault_on_other_kind(kind: Kind) -> None:
    """A fault on any kind but 'fault' is refused."""
    fault = Fault(code="access-denied", text="no")
    build = make_envelope if kind is Kind.REQUEST else partial(answer, kind)
    with pytest.raises(ValidationError, match="fault is required on, and only on"):
        build(fault=fault)


@pytest.mark.parametrize("field", ["created_at", "expires_at"])
def test_naive_datetime(field: str) -> None:
    """A timestamp without a timezone is refused."""
    naive = datetime(2026, 1, 15, 9, 0) + timedelta(hours=1 if field == "expires_at" else 0)
    with pytest.raises(ValidationError, match="timezone"):
        make_envelope(**{field: naive})


def test_other_timezones_normalise_to_utc() -> None:
    """A timestamp in another timezone is stored as the same instant in UTC."""
    kazan = timezone(timedelta(hours=3))
    envelope = make_envelope(
        created_at=datetime(2026, 1, 15, 12, 0, tzinfo=kazan),
        expires_at=datetime(2026, 1, 16, 12, 0, tzinfo=kazan),
    )
    assert envelope.created_at == NOW
    assert envelope.created_at.utcoffset() == timedelta(0)
    assert envelope.created_at.tzinfo is UTC


@pytest.mark.parametrize(
    "party", ["", "a", "Single-center", "1center", "single_center", "single center", "x" * 64]
)
@pytest.mark.parametrize("field", ["sender", "recipient"])
def test_bad_party_id(field: str, party: str) -> None:
    """A party id must be a lowercase slug of 2 to 63 characters."""
    fields: dict[str, Any] = {field: party}
    with pytest.raises(ValidationError):
        make_envelope(**fields)


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": 1.5},
        {"nested": {"amount": 2.0}},
        {"items": ["a", 1.0]},
        {"absent": None},
        {"items": ["a", None]},
        {"1st": "x"},
        {"has space": "x"},
        {"": "x"},
        {"xml:lang": "x"},
        {"k" * 65: "x"},
        {"matrix": [["a", "b"], ["c", "d"]]},
        {"matrix": ["a", ["b"]]},
        {"tuple": ("a", "b")},
        {"bytes": b"x"},
    ],
    ids=[
        "float",
        "nested-float",
        "float-in-list",
        "null",
        "null-in-list",
        "key-starts-with-digit",
        "key-with-space",
        "empty-key",
        "key-with-colon",
        "key-too-long",
        "list-in-list",
        "list-in-list-mixed",
        "tuple",
        "bytes",
    ],
)
def test_bad_payload(payload: dict[str, Any]) -> None:
    """A payload is JSON objects of strings, ints, bools and lists of those, XML-name keys."""
    with pytest.raises(ValidationError):
        make_envelope(payload=payload)


def test_payload_not_an_object() -> None:
    """The payload itself must be an object, not a list or a scalar."""
    for payload in (["a", "b"], "text", 1):
        with pytest.raises(ValidationError):
            make_envelope(payload=payload)


def test_payload_moderately_nested_is_fine() -> None:
    """Eight levels of nesting are accepted as they are."""
    payload = nested(8)
    assert make_envelope(payload=payload).payload == payload


def test_payload_too_deep() -> None:
    """A payload nested a hundred levels deep is refused (XML and JSON parsers must cope)."""
    with pytest.raises(ValidationError):
        make_envelope(payload=nested(100))


def test_payload_too_deep_in_json() -> None:
    """The same limit holds when the envelope is read from JSON."""
    shallow = make_envelope(payload=nested(2))
    raw = shallow.model_dump_json(exclude_none=True)
    deep = raw.replace('{"level":{"leaf":"x"}}', '{"level":' * 99 + '{"leaf":"x"' + "}" * 100)
    assert deep != raw
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(deep)


def test_strict_types() -> None:
    """No coercion: a string for a bool or an int for a string is refused."""
    with pytest.raises(ValidationError):
        make_envelope(test="true")
    with pytest.raises(ValidationError):
        make_envelope(case_id=42)


def test_extra_field() -> None:
    """Unknown fields are refused."""
    with pytest.raises(ValidationError):
        make_envelope(priority="high")


def test_model_is_frozen() -> None:
    """Fields cannot be reassigned after validation."""
    envelope = make_envelope()
    with pytest.raises(ValidationError):
        envelope.sender = "improvement"
    with pytest.raises(ValidationError):
        envelope.service.code = "other"
