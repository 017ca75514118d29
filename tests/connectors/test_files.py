"""The folder bridge's file conventions, without a broker: request files in, answers out."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange._hazmat.xml import parse
from exchange.catalog import Catalog
from exchange.codec.xml import payload_from_element
from exchange.connectors._files import answer_file, read_request, request_id_for, write_atomic
from exchange.envelope.model import Envelope, Fault, Kind, ServiceRef
from exchange.exceptions import ExchangeError
from exchange.node import Notice
from exchange.signing import WireFormat
from tests.bus.conftest import DATA
from tests.connectors.conftest import TREE_NS, TREES, json_request, xml_request

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The test catalog."""
    return Catalog.load(DATA / "catalog.toml", DATA / "schemas")


def _answer(kind: Kind, **fields: object) -> Envelope:
    now = FrozenClock().now()
    return Envelope.model_validate(
        {
            "message_id": "a-1",
            "kind": kind,
            "service": ServiceRef(code="tree-felling-permit", version="1"),
            "sender": "improvement",
            "recipient": "single-center",
            "created_at": now,
            "expires_at": now + timedelta(days=1),
            "correlation_id": "r-1",
            "request_digest": "0" * 64,
            "case_id": "KZN-7",
            **fields,
        }
    )


class TestReadRequest:
    def test_json_envelope(self, catalog: Catalog) -> None:
        """A JSON file gives service, version, case id and payload, to be sent as JSON."""
        raw = json_request(TREES, version="1", case_id="KZN-1")
        dropped = read_request("a.json", raw, catalog, LIMIT)
        assert (dropped.service, dropped.version, dropped.case_id) == (
            "tree-felling-permit",
            "1",
            "KZN-1",
        )
        assert dropped.payload == TREES
        assert dropped.wire_format is WireFormat.JSON

    def test_xml_document_and_case_from_name(self, catalog: Catalog) -> None:
        """An XML file names its service in the namespace and its case before ``__``."""
        dropped = read_request("KZN-2__trees.xml", xml_request(), catalog, LIMIT)
        assert (dropped.service, dropped.version, dropped.case_id) == (
            "tree-felling-permit",
            "1",
            "KZN-2",
        )
        assert dropped.payload["trees"] == {"species": "oak", "count": "3"}
        assert dropped.wire_format is WireFormat.XML
        assert read_request("trees.xml", xml_request(), catalog, LIMIT).case_id is None

    @pytest.mark.parametrize(
        ("name", "raw", "code", "words"),
        [
            ("a.json", b"{not json", "malformed", "not JSON"),
            ("a.json", b"[1]", "malformed", "JSON object"),
            ("a.json", json.dumps({"payload": {}}).encode(), "malformed", "service"),
            ("a.json", json_request(TREES, extra=1), "malformed", "extra"),
            ("a.json", json.dumps({"service": "x"}).encode(), "malformed", "payload"),
            ("a.xml", b"<a/>", "malformed", "root must be"),
            ("a.xml", xml_request(ns=TREE_NS.replace(":1", ":9")), "unknown-service", "9"),
            ("a.xml", b"<!DOCTYPE x><x/>", "malformed", "DOCTYPE"),
            ("a.xml", b"x" * (LIMIT + 1), "too-large", "limit"),
        ],
    )
    def test_bad_files(
        self, catalog: Catalog, name: str, raw: bytes, code: str, words: str
    ) -> None:
        """A file off the convention raises an exchange error with its code and the reason."""
        with pytest.raises(ExchangeError) as caught:
            read_request(name, raw, catalog, LIMIT)
        assert caught.value.code == code
        assert words in caught.value.message


def test_request_id_depends_on_name_and_content() -> None:
    """The same file always gets the same id; another name or content another one."""
    first = request_id_for("single-center", "a.json", b"{}")
    assert first == request_id_for("single-center", "a.json", b"{}")
    assert first != request_id_for("single-center", "b.json", b"{}")
    assert first != request_id_for("single-center", "a.json", b"{ }")
    assert first != request_id_for("land-property", "a.json", b"{}")


class TestAnswerFile:
    def test_json_response(self) -> None:
        """A JSON answer carries the ids, the request file and the payload."""
        notice = Notice("response", "r-1", _answer(Kind.RESPONSE, payload={"decision": "granted"}))
        name, data = answer_file(notice, WireFormat.JSON, "KZN-7.json")
        assert name == "r-1.response.json"
        document = json.loads(data)
        assert document["payload"] == {"decision": "granted"}
        assert (document["file"], document["case_id"], document["message_id"]) == (
            "KZN-7.json",
            "KZN-7",
            "a-1",
        )

    def test_xml_response_is_the_service_document(self) -> None:
        """An XML answer is the service's response document."""
        notice = Notice("response", "r-1", _answer(Kind.RESPONSE, payload={"decision": "granted"}))
        name, data = answer_file(notice, WireFormat.XML, "x.xml")
        assert name == "r-1.response.xml"
        document = parse(data, max_size=LIMIT)
        payload = payload_from_element(document, "tree-felling-permit", "1", Kind.RESPONSE)
        assert payload == {"decision": "granted"}

    def test_xml_fault(self) -> None:
        """An XML fault gives its code and text as elements."""
        fault = Fault(code="access-denied", text="no")
        notice = Notice("fault", "r-1", _answer(Kind.FAULT, fault=fault))
        name, data = answer_file(notice, WireFormat.XML, "x.xml")
        assert name == "r-1.fault.xml"
        document = parse(data, max_size=LIMIT)
        assert payload_from_element(document, "tree-felling-permit", "1", Kind.FAULT) == {
            "code": "access-denied",
            "text": "no",
        }

    def test_undelivered_is_json(self) -> None:
        """Undelivered has no envelope: always a JSON file, whatever the request's format."""
        name, data = answer_file(Notice("undelivered", "r-1"), WireFormat.XML, "x.xml")
        assert name == "r-1.undelivered.json"
        assert json.loads(data) == {"request_id": "r-1", "kind": "undelivered", "file": "x.xml"}


def test_write_atomic_once(tmp_path: Path) -> None:
    """Without replace, an existing file stays as it was; no temporary file is left."""
    target = tmp_path / "a.json"
    assert write_atomic(target, b"1", replace=False)
    assert not write_atomic(target, b"2", replace=False)
    assert target.read_bytes() == b"1"
    assert write_atomic(target, b"3")
    assert target.read_bytes() == b"3"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
