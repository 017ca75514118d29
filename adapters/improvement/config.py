"""The Committee of External Improvement's adapter settings.

Provides ``tree-felling-permit`` and ``stormwater-conditions``. Before it grants a
tree-felling permit it asks the Committee of Land and Property Relations for the plot
(``land-plot-info``): who holds it and whether it is a protected natural area. Its
departmental system is an older one that exchanges XML.

Run it with::

    exchange node run improvement

with the node's ``EXCHANGE_*`` settings (certificates, broker, store) as for any node.
"""

from __future__ import annotations

from adapters._config import AdapterConfig
from exchange.signing import WireFormat

CONFIG = AdapterConfig(
    party="improvement",
    provides=("tree-felling-permit", "stormwater-conditions"),
    asks=("land-plot-info",),
    wire_format=WireFormat.XML,
    # Land and Property answers data queries within seconds; past this the handler fails
    # and the node retries it (the retry waits for the same answer, it does not ask again).
    query_timeout=30.0,
    handler_concurrency=16,
)
