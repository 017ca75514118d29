"""The adapters as packages: configs agree with the catalog; the demo's stream is valid."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from adapters import AdapterConfig
from adapters.single_center.applications import applications
from adapters.single_center.config import CITIZEN_SERVICES
from exchange.catalog import Catalog, read_catalog_data
from exchange.cli.bus import _load_handlers
from exchange.envelope.model import Kind
from exchange.node.adapters import load_adapter
from exchange.signing import WireFormat
from tests.adapters._schemas import fits
from tests.catalog._city import REPO

TODAY = date(2026, 11, 30)
DEPARTMENTS = [
    p.id for p in read_catalog_data(REPO / "exchange/data/catalog.toml").parties if p.is_department
]


@pytest.mark.parametrize("party", DEPARTMENTS)
def test_config_agrees_with_the_catalog(city_catalog: Catalog, party: str) -> None:
    """An adapter provides exactly its party's catalog services and may call what it asks."""
    config = load_adapter(city_catalog, party).config
    assert isinstance(config, AdapterConfig)
    assert config.party == party
    provided = {s.code for s in city_catalog.services if s.provider == party}
    assert set(config.provides) == provided
    for service in config.asks:
        assert party in city_catalog.service(service).callers


@pytest.mark.parametrize("party", DEPARTMENTS)
def test_exchange_node_run_loads_the_register_function(city_catalog: Catalog, party: str) -> None:
    """The adapter's ``--handlers`` value loads the very function the catalog's adapter has."""
    adapter = load_adapter(city_catalog, party)
    assert adapter.handlers == f"adapters.{party.replace('-', '_')}.system:register"
    assert _load_handlers(adapter.handlers) is adapter.register


def test_node_config_takes_overrides(city_catalog: Catalog) -> None:
    """The department's node config, with a test's faster pacing on top."""
    config = load_adapter(city_catalog, "improvement").config.node_config(poll_interval=0.05)
    assert config.wire_format is WireFormat.XML
    assert config.poll_interval == 0.05


def test_stream_is_even_deterministic_and_in_both_formats() -> None:
    """The five services in turn, both formats for each, the same stream for the same seed."""
    stream = applications(40, today=TODAY, seed=7)
    assert Counter(a.service for a in stream) == dict.fromkeys(CITIZEN_SERVICES, 8)
    for service in CITIZEN_SERVICES:
        assert {a.wire_format for a in stream if a.service == service} == set(WireFormat)
    assert len({a.case_id for a in stream}) == 40
    assert stream[0].case_id == "KZN-2026-000001"
    assert applications(40, today=TODAY, seed=7) == stream
    assert applications(40, today=TODAY, seed=8) != stream


def test_first_tree_felling_crosses_three_departments() -> None:
    """Any stream of five or more has a tree-felling case that asks Land and Property."""
    stream = applications(5, today=TODAY, seed=123)
    trees = next(a for a in stream if a.service == "tree-felling-permit")
    assert trees.asks_another_department
    assert trees.payload["cadastral_number"] == "16:50:011302:45"


@pytest.mark.parametrize("seed", [1, 2026])
def test_every_application_fits_its_request_schema(city_catalog: Catalog, seed: int) -> None:
    """In XML and in JSON, typed as the node types it."""
    for application in applications(150, today=TODAY, seed=seed):
        fits(city_catalog, application.service, Kind.REQUEST, application.payload)
