"""The departments' adapters: each party's node settings and the demo's simulated systems.

One package per party, named after its party id with underscores
(``adapters/land_property/`` for ``land-property``): ``config.py`` holds ``CONFIG``, the
party's :class:`~adapters._config.AdapterConfig` (what it provides and asks, its node's
defaults), and ``system.py`` its simulated departmental system, whose ``register(node)`` is
what ``exchange node run PARTY --handlers adapters.<package>.system:register`` loads.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from adapters._config import AdapterConfig
from exchange.node import Node

__all__ = ["PARTIES", "AdapterConfig", "config_of", "register_of"]

PARTIES = ("land-property", "urban-permits", "architecture", "improvement", "single-center")
"""Every party with an adapter: data providers first, the front office last (start order)."""


def config_of(party: str) -> AdapterConfig:
    """The ``CONFIG`` of ``party``'s adapter."""
    config: AdapterConfig = import_module(f"adapters.{_package(party)}.config").CONFIG
    return config


def register_of(party: str) -> Callable[[Node], None]:
    """The ``register`` function of ``party``'s simulated departmental system."""
    register: Callable[[Node], None] = import_module(f"adapters.{_package(party)}.system").register
    return register


def _package(party: str) -> str:
    if party not in PARTIES:
        raise KeyError(f"no adapter for party {party!r}; adapters exist for {', '.join(PARTIES)}")
    return party.replace("-", "_")
