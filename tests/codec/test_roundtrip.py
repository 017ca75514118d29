"""Round trips between the wire formats: XML -> model -> JSON -> model -> XML loses nothing."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from exchange._hazmat.xml import parse, serialize
from exchange.catalog import read_catalog_data
from exchange.codec.json import decode_json, encode_json
from exchange.codec.xml import decode_xml, encode_xml
from exchange.config import packaged
from exchange.envelope.model import Attachment, Envelope, Fault, Kind, ServiceRef
from exchange.testing import make_envelope

MAX_SIZE = 1024 * 1024
PARTIES = tuple(
    p.id for p in read_catalog_data(packaged("catalog.toml")).parties if p.is_department
)
ZONES = (
    UTC,
    timezone(timedelta(hours=3)),
    timezone(timedelta(hours=-5, minutes=-30)),
    timezone(timedelta(hours=14)),
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that XML 1.0 can carry: no surrogates, no control characters but tab, LF and CR
# (lxml writes CR as a character reference, so it survives).
XML_CHARACTERS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters="\t\n\r"
)
xml_text = st.text(XML_CHARACTERS, max_size=40)
message_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,40}", fullmatch=True)
digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
payload_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
services = st.builds(
    ServiceRef,
    code=st.from_regex(r"[a-z][a-z0-9-]{1,30}", fullmatch=True),
    version=st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){0,2}", fullmatch=True),
)
attachments = st.builds(
    Attachment,
    name=xml_text.filter(lambda s: s != "" and not set(s) & {"/", "\\"}),
    media_type=st.sampled_from(
        ["application/pdf", "image/png", "image/vnd.dwg", "application/vnd.oasis+xml"]
    ),
    size=st.integers(min_value=0, max_value=2**40),
    sha256=digests,
    location=xml_text.filter(bool),
)
faults = st.builds(
    Fault,
    code=st.from_regex(r"[a-z][a-z0-9-]{1,30}", fullmatch=True),
    text=xml_text.filter(bool),
)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(ZONES)
)
lifetimes = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=400))


def xml_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """Payloads the XML encoding carries exactly.

    Leaves are strings (XML has no types), objects are non-empty (``<a/>`` reads as ""),
    lists have two or more items (one repeated element reads as a scalar) and hold no lists.
    """
    objects: st.SearchStrategy[dict[str, Any]] = st.deferred(
        lambda: st.dictionaries(
            payload_keys,
            xml_text | objects | st.lists(xml_text | objects, min_size=2, max_size=4),
            min_size=1,
            max_size=4,
        )
    )
    return objects


def json_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """Payloads as JSON carries them: text, ints, bools, empty objects and lists."""
    scalars = (
        st.text(XML_CHARACTERS, max_size=30)
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.booleans()
    )
    objects: st.SearchStrategy[dict[str, Any]] = st.deferred(
        lambda: st.dictionaries(
            payload_keys,
            scalars | objects | st.lists(scalars | objects, max_size=4),
            max_size=4,
        )
    )
    return objects


@st.composite
def envelopes(draw: st.DrawFn, payloads: st.SearchStrategy[dict[str, Any]]) -> Envelope:
    """Valid envelopes of every kind with every optional field sometimes present."""
    kind = draw(st.sampled_from(Kind))
    sender, recipient = draw(st.permutations(PARTIES))[:2]
    created = draw(timestamps)
    answers = kind is not Kind.REQUEST
    return Envelope(
        message_id=draw(message_ids),
        kind=kind,
        service=draw(services),
        sender=sender,
        recipient=recipient,
        created_at=created,
        expires_at=created + draw(lifetimes),
        correlation_id=draw(message_ids) if answers else None,
        case_id=draw(st.none() | message_ids),
        request_digest=draw(digests) if answers else None,
        test=draw(st.booleans()),
        payload=draw(st.none() | payloads),
        attachments=tuple(draw(st.lists(attachments, max_size=3))),
        fault=draw(faults) if kind is Kind.FAULT else None,
    )


def xml_bytes(envelope: Envelope) -> bytes:
    """The serialised XML of an envelope."""
    return serialize(encode_xml(envelope))


@SETTINGS
@given(envelopes(xml_payloads()))
def test_xml_json_xml_loses_nothing(envelope: Envelope) -> None:
    """XML bytes -> model -> JSON -> model -> XML bytes gives the same bytes and models."""
    start = xml_bytes(envelope)
    from_xml = decode_xml(parse(start, max_size=MAX_SIZE))
    assert from_xml == envelope
    from_json = decode_json(encode_json(from_xml))
    assert from_json == from_xml
    assert xml_bytes(from_json) == start


@SETTINGS
@given(envelopes(xml_payloads()))
def test_json_model_json_same_bytes_for_xml_strategy(envelope: Envelope) -> None:
    """JSON -> model -> JSON gives the same bytes for the same envelopes."""
    raw = encode_json(envelope)
    again = decode_json(raw)
    assert again == envelope
    assert encode_json(again) == raw


@SETTINGS
@given(envelopes(json_payloads()))
def test_json_model_json_same_bytes_for_json_payloads(envelope: Envelope) -> None:
    """JSON keeps what XML cannot: ints, bools, empty objects and one-item lists."""
    raw = encode_json(envelope)
    again = decode_json(raw)
    assert again == envelope
    assert encode_json(again) == raw


@SETTINGS
@given(timestamps, lifetimes)
def test_timestamps_normalise_to_utc(created: datetime, lifetime: timedelta) -> None:
    """Timestamps in any timezone become the same instant in UTC, written with 'Z'."""
    envelope = make_envelope(created_at=created, expires_at=created + lifetime)
    assert envelope.created_at == created
    assert envelope.created_at.tzinfo is UTC
    assert envelope.expires_at.tzinfo is UTC
    raw = xml_bytes(envelope)
    assert b"+00:00" not in raw
    assert b"+03:00" not in raw
    assert decode_xml(parse(raw, max_size=MAX_SIZE)).created_at == created
    assert decode_json(encode_json(envelope)).created_at == created


def through_xml(payload: dict[str, Any]) -> Any:
    """The payload as it comes back after a trip through the XML encoding."""
    envelope = make_envelope(payload=payload)
    return decode_xml(parse(xml_bytes(envelope), max_size=MAX_SIZE)).payload


def test_xml_payload_scalars_become_strings() -> None:
    """XML has no types: ints and bools come back as their text; the payload model types them."""
    assert through_xml({"count": 3, "negative": -7, "flag": True, "off": False}) == {
        "count": "3",
        "negative": "-7",
        "flag": "true",
        "off": "false",
    }


def test_xml_payload_single_item_list_becomes_scalar() -> None:
    """A one-item list is one element, read back as a scalar (or object); two stay a list."""
    assert through_xml({"trees": ["oak"]}) == {"trees": "oak"}
    assert through_xml({"trees": [{"species": "oak"}]}) == {"trees": {"species": "oak"}}
    assert through_xml({"trees": ["oak", "birch"]}) == {"trees": ["oak", "birch"]}


def test_xml_payload_empty_containers() -> None:
    """An empty object reads back as an empty string; an empty list vanishes."""
    assert through_xml({"applicant": {}}) == {"applicant": ""}
    assert through_xml({"trees": [], "address": "Kazan"}) == {"address": "Kazan"}


def test_xml_keeps_whitespace_of_leaves() -> None:
    """Leading, trailing and inner whitespace of a leaf is kept exactly."""
    payload = {"note": "  two\tspaces\n and a newline  "}
    assert through_xml(payload) == payload


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_round_trips(kind: Kind) -> None:
    """A hand-written envelope of each kind survives XML -> JSON -> XML."""
    fields: dict[str, Any] = {"kind": kind}
    if kind is not Kind.REQUEST:
        fields.update(correlation_id="req-1", request_digest="0" * 64)
    if kind is Kind.FAULT:
        fields["fault"] = Fault(code="access-denied", text="single-center may not call this")
    envelope = make_envelope(
        attachments=(
            Attachment(
                name="plan.pdf",
                media_type="application/pdf",
                size=1024,
                sha256="f" * 64,
                location="sha256:" + "f" * 64,
            ),
        ),
        test=True,
        **fields,
    )
    start = xml_bytes(envelope)
    back = decode_json(encode_json(decode_xml(parse(start, max_size=MAX_SIZE))))
    assert back == envelope
    assert xml_bytes(back) == start


def _with_text(text: str) -> list[Callable[[], Envelope]]:
    answer: dict[str, Any] = {"correlation_id": "req-1", "request_digest": "0" * 64}
    return [
        lambda: make_envelope(payload={"note": text}),
        lambda: make_envelope(payload={"items": ["a", text]}),
        lambda: make_envelope(
            kind=Kind.FAULT, fault=Fault(code="processing-failed", text=text), **answer
        ),
        lambda: make_envelope(
            attachments=(
                Attachment(
                    name="a.pdf",
                    media_type="application/pdf",
                    size=1,
                    sha256="0" * 64,
                    location=text,
                ),
            )
        ),
    ]


@pytest.mark.parametrize("text", ["bell\x07", "nul\x00", "escape\x1b[0m", "vt\x0b"])
def test_text_xml_cannot_carry_is_refused_by_the_model(text: str) -> None:
    """Text XML 1.0 cannot carry is a ValidationError, so every valid envelope encodes as XML.

    Both wire formats carry the same fields: an envelope the model accepts must not make
    ``encode_xml`` (and so ``seal(..., WireFormat.XML)``) crash with lxml's ValueError.
    """
    for build in _with_text(text):
        try:
            envelope = build()
        except ValidationError:
            continue
        raw = xml_bytes(envelope)  # raises ValueError today
        assert decode_xml(parse(raw, max_size=MAX_SIZE)) == envelope


def test_printable_ascii_keys() -> None:
    """Sanity: the key alphabet of the strategy is what the model accepts."""
    keys = {"_" + c for c in string.ascii_letters + string.digits + "_.-"}
    assert make_envelope(payload=dict.fromkeys(keys, "x")).payload is not None
