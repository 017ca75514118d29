"""Adapters are found through the catalog: each way one can be wrong is adapter-invalid."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from exchange.catalog import Catalog, CatalogData
from exchange.exceptions import AdapterInvalid, NotAParty, UnknownParty
from exchange.node import NodeConfig
from exchange.node.adapters import load_adapter, load_adapters

DATA = Path(__file__).resolve().parents[1] / "data"
CONFIG = """
from dataclasses import dataclass, replace

from exchange.node import NodeConfig


@dataclass(frozen=True)
class Config:
    party: str

    def node_config(self, **overrides):
        return replace(NodeConfig(), **overrides)


CONFIG = Config({party!r})
"""
SYSTEM = "def register(node):\n    node.registered = True\n"


def _catalog(adapters: dict[str, str | None]) -> Catalog:
    """A catalog of two departments (the front office asks the provider) and a collector."""
    parties: list[dict[str, object]] = [
        {"id": party, "name": party, **({"adapter": module} if module else {})}
        for party, module in adapters.items()
    ]
    parties.append({"id": "collector", "name": "Collector", "role": "collector"})
    services = [
        {
            "code": "tree-felling-permit",
            "version": "1",
            "title": "Trees",
            "provider": "improvement",
            "callers": ["single-center"],
            "deadline": {"days": 14},
            "schemas": "services/tree-felling-permit/1",
        }
    ]
    departments = set(adapters)
    data = CatalogData.model_validate(
        {
            "version": "t",
            "parties": parties,
            "services": services if {"improvement", "single-center"} <= departments else [],
        }
    )
    return Catalog(data, DATA / "schemas")


def _package(
    root: Path, party: str, *, config: str | None = None, system: str | None = SYSTEM
) -> str:
    """Write an adapter package under ``root`` (on sys.path); its unique module name."""
    name = f"fake_adapter_{uuid.uuid4().hex[:8]}"
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "config.py").write_text(config if config is not None else CONFIG.format(party=party))
    if system is not None:
        (folder / "system.py").write_text(system)
    (folder / "applications.py").write_text("def applications(count):\n    return []\n")
    return name


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for this test's adapter packages."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_loads_the_adapter_the_catalog_names(root: Path) -> None:
    """CONFIG, register, the --handlers value and the adapter's other modules."""
    module = _package(root, "improvement")
    adapter = load_adapter(_catalog({"improvement": module}), "improvement")
    assert adapter.party == "improvement"
    assert adapter.module == module
    assert adapter.config.party == "improvement"
    assert adapter.config.node_config(poll_interval=0.5) == NodeConfig(poll_interval=0.5)
    assert adapter.handlers == f"{module}.system:register"
    assert adapter.register.__module__ == f"{module}.system"
    assert adapter.part("applications").applications(3) == []


def test_load_adapters_follows_the_start_order(root: Path) -> None:
    """Every department's adapter, providers before the parties that call them."""
    catalog = _catalog(
        {
            "single-center": _package(root, "single-center"),
            "improvement": _package(root, "improvement"),
        }
    )
    assert [p.id for p in catalog.parties] == ["single-center", "improvement"]
    assert [a.party for a in load_adapters(catalog)] == ["improvement", "single-center"]


def test_a_department_without_adapter_is_named() -> None:
    """The error says where to name one."""
    with pytest.raises(AdapterInvalid, match=r"names no adapter for improvement.*\[\[parties\]\]"):
        load_adapter(_catalog({"improvement": None}), "improvement")


def test_a_stranger_or_the_collector_has_no_adapter() -> None:
    """Only departments have adapters."""
    catalog = _catalog({"improvement": None})
    with pytest.raises(UnknownParty):
        load_adapter(catalog, "tax-office")
    with pytest.raises(NotAParty):
        load_adapter(catalog, "collector")


def test_a_module_that_does_not_import(root: Path) -> None:
    """A package that is not installed names the module."""
    with pytest.raises(AdapterInvalid, match=r"cannot import no_such_adapter\.config"):
        load_adapter(_catalog({"improvement": "no_such_adapter"}), "improvement")


def test_a_config_module_without_config(root: Path) -> None:
    """config.py must define CONFIG with node_config()."""
    module = _package(root, "improvement", config="OTHER = 1\n")
    with pytest.raises(AdapterInvalid, match="has no CONFIG"):
        load_adapter(_catalog({"improvement": module}), "improvement")


def test_an_adapter_written_for_another_party(root: Path) -> None:
    """The catalog may not give one department another's adapter."""
    module = _package(root, "land-property")
    with pytest.raises(AdapterInvalid, match="written for 'land-property', not improvement"):
        load_adapter(_catalog({"improvement": module}), "improvement")


def test_a_system_module_without_register(root: Path) -> None:
    """system.py must define register(node)."""
    module = _package(root, "improvement", system="register = 'not a function'\n")
    with pytest.raises(AdapterInvalid, match="has no register"):
        load_adapter(_catalog({"improvement": module}), "improvement")


def test_a_missing_part(root: Path) -> None:
    """Asking an adapter for a module it does not have is adapter-invalid."""
    adapter = load_adapter(_catalog({"improvement": _package(root, "improvement")}), "improvement")
    with pytest.raises(AdapterInvalid, match="cannot import"):
        adapter.part("no_such_part")
