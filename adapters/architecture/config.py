"""The Department of Architecture and Urban Planning's adapter settings.

Provides ``architectural-appearance`` and ``signage-project``. Before it approves the
appearance of an object on a known plot it asks the Management of Urban-Planning Permits
for an extract of the zoning plan (``urban-plan-extract``): red lines and heritage
protection zones decide what may change on a facade.

Run it with::

    exchange node run architecture
"""

from __future__ import annotations

from adapters._config import AdapterConfig
from exchange.signing import WireFormat

CONFIG = AdapterConfig(
    party="architecture",
    provides=("architectural-appearance", "signage-project"),
    asks=("urban-plan-extract",),
    wire_format=WireFormat.JSON,
    query_timeout=30.0,
    handler_concurrency=16,
)
