"""The Single Center for Municipal Services' adapter settings.

The front office provides no service on the bus: it files citizens' applications for the
five electronic services with the departments that provide them, and tells each citizen
the decision. Its web front office speaks JSON.

Run it with::

    exchange node run single-center
"""

from __future__ import annotations

from adapters._config import AdapterConfig
from exchange.signing import WireFormat

CITIZEN_SERVICES = (
    "architectural-appearance",
    "signage-project",
    "excavation-permit",
    "tree-felling-permit",
    "stormwater-conditions",
)
"""The five services the Single Center files for citizens (the seed's fully electronic five)."""

CONFIG = AdapterConfig(
    party="single-center",
    provides=(),
    asks=CITIZEN_SERVICES,
    wire_format=WireFormat.JSON,
)
