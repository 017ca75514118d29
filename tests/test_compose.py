"""docker-compose.yml agrees with the catalog: a node per department, a certificate per identity."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.catalog import read_catalog_data

REPO = Path(__file__).resolve().parents[1]


def test_compose_runs_departments_and_certifies_the_infrastructure() -> None:
    """Every department runs a node; the collector gets a certificate but runs no node."""
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    catalog = read_catalog_data(REPO / "catalog.toml")
    departments = {p.id for p in catalog.parties if p.is_department}
    nodes = set(re.findall(r'command: \["node", "run", "([a-z-]+)"', compose))
    assert nodes == departments
    [issued] = re.findall(r"for party in ([a-z -]+); do", compose)
    assert set(issued.split()) == {p.id for p in catalog.parties if p.role.value != "console"}
    assert "collector" in set(issued.split()) - nodes
