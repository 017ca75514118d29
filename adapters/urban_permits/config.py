"""The Management of Urban-Planning Permits' adapter settings.

Provides ``excavation-permit`` to citizens (through the Single Center) and
``urban-plan-extract`` to other departments: the territorial zone of a plot, what may be
built there, red lines and protection zones. It decides from its own zoning plan and asks
no one.

Run it with::

    exchange node run urban-permits
"""

from __future__ import annotations

from adapters._config import AdapterConfig
from exchange.signing import WireFormat

CONFIG = AdapterConfig(
    party="urban-permits",
    provides=("excavation-permit", "urban-plan-extract"),
    wire_format=WireFormat.JSON,
    handler_concurrency=16,
)
