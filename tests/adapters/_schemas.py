"""Helper of the adapters' tests: a payload checked against its service's schemas."""

from __future__ import annotations

from typing import Any

from exchange.catalog import Catalog
from exchange.envelope.model import Kind
from tests.catalog._city import envelope


def fits(catalog: Catalog, service: str, kind: Kind, payload: dict[str, Any]) -> None:
    """The payload is typed already and passes the service's XSD and JSON Schema.

    Raises:
        InvalidContent: it does not.
    """
    typed = catalog.typed(envelope(catalog.service(service), kind, payload))
    assert typed.payload == payload
    catalog.check_payload(typed, xml=True)
    catalog.check_payload(typed, xml=False)
