"""Building a party's node from settings: catalog, keys, trust store, store and bus."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from exchange._clock import SYSTEM_CLOCK, Clock
from exchange.attachments.store import AttachmentStore
from exchange.audit.config import AuditSettings
from exchange.catalog import Catalog
from exchange.config import Settings
from exchange.exceptions import UnknownParty
from exchange.node.config import NodeConfig
from exchange.node.context import NodeContext
from exchange.node.node import Companion, Node
from exchange.node.store.base import Store
from exchange.pki.authority import CertificateAuthority
from exchange.pki.trust import TrustStore
from exchange.transport.bus import Bus
from exchange.transport.names import BusNames


def open_store(party: str, settings: Settings, clock: Clock) -> Store:
    """The party's store: PostgreSQL when ``EXCHANGE_STORE_DSN`` is set, else a SQLite file."""
    if settings.store_dsn:
        from exchange.node.store.postgres import PostgresStore

        return PostgresStore(settings.store_dsn, party, clock, schema=store_schema(settings, party))
    from exchange.node.store.sqlite import SQLiteStore

    settings.store_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(settings.store_dir / f"{party}.db", party, clock)


def attachment_store(party: str, settings: Settings) -> AttachmentStore:
    """The party's attachment store: a directory beside its store (``<party>.attachments``)."""
    return AttachmentStore(settings.store_dir / f"{party}.attachments")


def node_config(settings: Settings) -> NodeConfig:
    """A node's tunables from settings (the rest keep NodeConfig's defaults)."""
    days = settings.message_retention_days
    return NodeConfig(
        max_envelope_bytes=settings.max_envelope_bytes,
        message_retention=None if days is None else timedelta(days=days),
        metadata_only=settings.metadata_only,
        declare_topology=settings.declare_topology,
        handler_retry_delays=settings.handler_retry_delays,
        wait_recheck=settings.wait_recheck,
        verify_workers=settings.verify_workers,
        verify_inline_bytes=settings.verify_inline_bytes,
        claim_lease=settings.claim_lease,
    )


def store_schema(settings: Settings, party: str) -> str:
    """The PostgreSQL schema of ``party``'s store: the bus prefix and the party, as SQL names."""
    prefix = "".join(c if c.isalnum() else "_" for c in settings.bus_prefix).strip("_")
    return f"{prefix}_{party.replace('-', '_')}" if prefix else party.replace("-", "_")


def build_node(
    party: str,
    settings: Settings | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    config: NodeConfig | None = None,
    catalog: Catalog | None = None,
    store: Store | None = None,
    audit: AuditSettings | None = None,
    companions: Iterable[Callable[[Node], Companion]] = (),
) -> Node:
    """Wire a node for ``party`` from settings (``EXCHANGE_*``, ``EXCHANGE_AUDIT_*`` where
    ``settings`` or ``audit`` are not given): the one place a node's settings are read.

    ``companions`` make what runs beside the node (``exchange.observe.node_companions``:
    metrics and health probes); each is attached to the built node.

    Raises:
        CatalogError (catalog-invalid), UnknownParty (unknown-party): misconfigured.
    """
    settings = settings or Settings()
    catalog = catalog or Catalog.load(settings.catalog, settings.schemas_dir)
    if party not in {p.id for p in catalog.parties}:
        raise UnknownParty(f"{party} is not a party of the catalog {settings.catalog}")
    credentials = CertificateAuthority(settings.certs_dir, clock).credentials(party)
    context = NodeContext(
        party=party,
        catalog=catalog,
        credentials=credentials,
        trust=TrustStore.from_dir(settings.certs_dir),
        store=store or open_store(party, settings, clock),
        bus=Bus(settings.amqp_url),
        names=BusNames(settings.bus_prefix),
        clock=clock,
        attachments=attachment_store(party, settings),
        config=config or node_config(settings),
    )
    node = Node(context, audit or AuditSettings())
    for make in companions:
        node.attach(make(node))
    return node
