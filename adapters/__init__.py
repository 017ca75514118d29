"""The departments' adapters: each party's node settings and the demo's simulated systems.

One package per department, named in the catalog (``adapter = "adapters.land_property"``
on its ``[[parties]]`` entry): ``config.py`` holds ``CONFIG``, the party's
:class:`~adapters._config.AdapterConfig` (what it provides and asks, its node's defaults),
and ``system.py`` its simulated departmental system, whose ``register(node)`` is what
``exchange node run PARTY`` loads through the catalog (``exchange.node.adapters``).
"""

from __future__ import annotations

from adapters._config import AdapterConfig

__all__ = ["AdapterConfig"]
