"""The package structure anyone can check: the imports between exchange's subpackages.

Walks every module's imports (deferred ones inside functions included) with ``ast``, so it
needs nothing imported and fails on a tree with a cycle or a reach into another package's
private module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exchange"
# Shared private modules at the top: meant for every subpackage, not one package's insides.
SHARED_PRIVATE = {"_hazmat", "_clock", "_ids", "_logging", "_validation"}
# Leaves: what they may import of exchange (the chain and vocabulary sit under node and audit).
LEAVES = {"ledger": {"exceptions"}, "transport": {"exceptions"}, "exceptions": set()}
# The broker client's types stay behind transport's Transport protocol.
BROKER_CLIENTS = ("aio_pika", "aiormq", "pamqp")


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: Path) -> Iterator[str]:
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "exchange" and len(parts) > 1 else None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        source = _subpackage(module)
        if source is None:
            continue
        for target in map(_subpackage, _imports(module, path)):
            if target is not None and target != source:
                graph.setdefault(source, set()).add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_import_cycle_between_subpackages() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_reach_into_another_subpackages_private_module() -> None:
    reaches = []
    for module, path in _modules():
        for imported in _imports(module, path):
            parts = imported.split(".")
            private = [i for i, part in enumerate(parts) if part.startswith("_") and i > 0]
            if not private or parts[0] != "exchange" or parts[1] in SHARED_PRIVATE:
                continue
            owner = ".".join(parts[: private[0]])
            if not (module == owner or module.startswith(owner + ".")):
                reaches.append(f"{module} imports {imported}")
    assert reaches == []


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_only_what_they_may(leaf: str) -> None:
    assert _graph().get(leaf, set()) <= LEAVES[leaf]


def test_only_transport_imports_the_broker_client() -> None:
    leaks = [
        f"{module} imports {imported}"
        for module, path in _modules()
        if _subpackage(module) != "transport"
        for imported in _imports(module, path)
        if imported.split(".")[0] in BROKER_CLIENTS
    ]
    assert leaks == []


def test_core_never_imports_the_adapters() -> None:
    """Departments' adapters are plugins: exchange loads them by the name the catalog gives."""
    reaches = [
        f"{module} imports {imported}"
        for module, path in _modules()
        for imported in _imports(module, path)
        if imported.split(".")[0] == "adapters"
    ]
    assert reaches == []
