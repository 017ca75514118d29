"""The Committee of Land and Property Relations' adapter settings.

Provides ``land-plot-info`` to every department (the catalog lists who may ask): area,
category, permitted use, registered rights and encumbrances of a plot. It asks no one;
its answers come straight from the land register, so it needs few handler slots.

Run it with::

    exchange node run land-property
"""

from __future__ import annotations

from adapters._config import AdapterConfig
from exchange.signing import WireFormat

CONFIG = AdapterConfig(
    party="land-property",
    provides=("land-plot-info",),
    wire_format=WireFormat.JSON,
    handler_concurrency=8,
)
