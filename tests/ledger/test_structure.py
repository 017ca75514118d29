"""The ledger is a leaf: it imports nothing of the packages that build on it."""

from __future__ import annotations

import ast
from pathlib import Path

import exchange.ledger

LEDGER = Path(exchange.ledger.__file__).parent
# What a leaf may use of the package: the shared errors and the top-level private modules.
ALLOWED = ("exchange.ledger", "exchange.exceptions", "exchange._")


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
    return found


def test_ledger_imports_no_package_above_it() -> None:
    """No module of exchange.ledger imports node, audit or any other exchange package."""
    bad = [
        f"{path.name}:{line} imports {module}"
        for path in sorted(LEDGER.glob("*.py"))
        for module, line in _imports(path)
        if module.startswith("exchange") and not module.startswith(ALLOWED)
    ]
    assert bad == []


def test_no_deferred_import_of_the_ledger() -> None:
    """Every import of the ledger is at module level: nothing works around a cycle."""
    deferred = []
    for path in sorted(Path(exchange.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "exchange.ledger"
                ):
                    deferred.append(f"{path.name}:{node.lineno} {node.module}")
    assert deferred == []
