"""The service catalog (one TOML file): services, providers, callers, deadlines, schemas."""

from exchange.catalog.catalog import Catalog, read_catalog_data
from exchange.catalog.model import (
    ArchiveMode,
    AttachmentPolicy,
    CatalogData,
    Deadline,
    Party,
    Role,
    Service,
)

__all__ = [
    "ArchiveMode",
    "AttachmentPolicy",
    "Catalog",
    "CatalogData",
    "Deadline",
    "Party",
    "Role",
    "Service",
    "read_catalog_data",
]
