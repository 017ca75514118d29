"""Connectors go through the node's public API, never into its context (store, bus)."""

from __future__ import annotations

import ast
from pathlib import Path

import exchange.connectors

CONNECTORS = Path(exchange.connectors.__file__).parent


def test_no_connector_reaches_into_a_node_context() -> None:
    """No ``.ctx`` attribute is read anywhere under exchange/connectors."""
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(CONNECTORS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "ctx"
    ]
    assert found == []
    assert len(list(CONNECTORS.glob("*.py"))) >= 4  # the walk saw the connectors
