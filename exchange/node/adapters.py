"""A department's adapter, found by the name the catalog gives it (core never imports one).

An adapter is a package (``adapter = "adapters.land_property"`` on the party in the
catalog) with ``config.CONFIG``, the department's settings (what :class:`AdapterSettings`
describes), and ``system.register(node)``, which installs its handlers and listeners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import Any, Protocol

from exchange.catalog import Catalog
from exchange.exceptions import AdapterInvalid
from exchange.node.config import NodeConfig
from exchange.node.node import Node

CONFIG_MODULE = "config"  # <adapter>.config holds CONFIG
SYSTEM_MODULE = "system"  # <adapter>.system holds register(node)


class AdapterSettings(Protocol):
    """What the exchange reads of an adapter's ``CONFIG`` (``adapters._config.AdapterConfig``)."""

    @property
    def party(self) -> str:
        """The party id the adapter is written for."""

    def node_config(self, **overrides: Any) -> NodeConfig:
        """The department's node tunables, ``overrides`` on top."""


@dataclass(frozen=True, slots=True)
class Adapter:
    """A department's loaded adapter: its settings and the function that registers it."""

    party: str
    module: str
    config: AdapterSettings
    register: Callable[[Node], None]

    @property
    def handlers(self) -> str:
        """The ``--handlers`` value of ``exchange node run`` that loads the same function."""
        return f"{self.module}.{SYSTEM_MODULE}:register"

    def part(self, name: str) -> ModuleType:
        """Another module of the adapter (e.g. the demo's ``applications``).

        Raises:
            AdapterInvalid (adapter-invalid): the adapter has no such module.
        """
        return _import(f"{self.module}.{name}", self.party)


def load_adapter(catalog: Catalog, party: str) -> Adapter:
    """The adapter the catalog names for the department ``party``.

    Raises:
        UnknownParty (unknown-party), NotAParty (not-a-party): not a department.
        AdapterInvalid (adapter-invalid): no adapter named, or it cannot be loaded, lacks
            ``config.CONFIG`` or ``system.register``, or is written for another party.
    """
    module = catalog.check_party(party).adapter
    if module is None:
        raise AdapterInvalid(
            f'the catalog names no adapter for {party}: add adapter = "<package>" to its '
            "[[parties]] entry, or run its node with --handlers",
            party=party,
        )
    config = getattr(_import(f"{module}.{CONFIG_MODULE}", party), "CONFIG", None)
    if config is None or not callable(getattr(config, "node_config", None)):
        raise AdapterInvalid(
            f"{module}.{CONFIG_MODULE} has no CONFIG with node_config(): define "
            "CONFIG = AdapterConfig(...) there",
            party=party,
        )
    if getattr(config, "party", None) != party:
        raise AdapterInvalid(
            f"{module} is written for {getattr(config, 'party', None)!r}, not {party}: "
            "fix the adapter named in the catalog or its CONFIG.party",
            party=party,
        )
    register = getattr(_import(f"{module}.{SYSTEM_MODULE}", party), "register", None)
    if not callable(register):
        raise AdapterInvalid(
            f"{module}.{SYSTEM_MODULE} has no register(node) function: define one there",
            party=party,
        )
    return Adapter(party, module, config, register)


def load_adapters(catalog: Catalog) -> list[Adapter]:
    """The adapter of every department of the catalog, in its start order.

    Raises:
        AdapterInvalid (adapter-invalid): a department has none, or it cannot be loaded.
    """
    return [load_adapter(catalog, party.id) for party in catalog.start_order]


def _import(name: str, party: str) -> ModuleType:
    try:
        return import_module(name)
    except ImportError as exc:
        raise AdapterInvalid(
            f"cannot import {name}, the adapter of {party}: {exc}; install the package that "
            "provides it or fix the party's adapter in the catalog",
            party=party,
        ) from None
