"""The service catalog (one TOML file): services, providers, callers, deadlines, schemas."""

from exchange.catalog.catalog import Catalog
from exchange.catalog.model import CatalogData, Deadline, Party, Service

__all__ = ["Catalog", "CatalogData", "Deadline", "Party", "Service"]
