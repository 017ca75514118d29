"""Fixtures for the connector tests: the broker fixtures of tests/bus, and dropping files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.bus import conftest as bus_fixtures

# The broker fixtures of tests/bus, shared here: live PKI, session prefix, settings, nodes.
live_pki = bus_fixtures.live_pki
bus_prefix = bus_fixtures.bus_prefix
settings = bus_fixtures.settings
make_node = bus_fixtures.make_node

TREE_NS = "urn:kazan:exchange:service:tree-felling-permit:1"
TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}


def drop(folder: Path, name: str, data: bytes) -> Path:
    """Drop a file as a departmental system does: write ``name.tmp``, then rename it."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{name}.tmp"
    tmp.write_bytes(data)
    return tmp.rename(folder / name)


def json_request(payload: dict[str, Any], **fields: Any) -> bytes:
    """A JSON request file for tree-felling-permit."""
    return json.dumps({"service": "tree-felling-permit", **fields, "payload": payload}).encode()


def xml_request(
    address: str = "Kazan, ul. Baumana 1", count: str = "3", ns: str = TREE_NS
) -> bytes:
    """An XML request file: the service's request document."""
    return (
        f'<s:request xmlns:s="{ns}"><s:applicant><s:name>Ilnur Khasanov</s:name></s:applicant>'
        f"<s:address>{address}</s:address>"
        f"<s:trees><s:species>oak</s:species><s:count>{count}</s:count></s:trees></s:request>"
    ).encode()
