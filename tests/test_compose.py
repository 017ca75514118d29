"""docker-compose.yml agrees with the catalog: a node per department, a certificate per identity."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.catalog import read_catalog_data

REPO = Path(__file__).resolve().parents[1]
CATALOG = read_catalog_data(REPO / "exchange/data/catalog.toml")
COMPOSE = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
DEPARTMENTS = {p.id for p in CATALOG.parties if p.is_department}


def _node_services(compose: str = COMPOSE, *, profile: str | None = None) -> dict[str, str]:
    """Compose service name -> the party its ``node run`` command runs, of one profile."""
    services = compose.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=  [a-z][a-z0-9-]*:\n)", services):
        name = re.match(r"\s*([a-z][a-z0-9-]*):", block)
        command = re.search(r'command: \["node", "run", "([a-z-]+)"(.*)\]', block)
        profiles = re.search(r"profiles: \[([a-z, ]+)\]", block)
        in_profile = profiles.group(1) if profiles else None
        if name and command and in_profile == profile:
            assert command.group(2) == "", f"{name.group(1)}: the catalog names the handlers"
            found[name.group(1)] = command.group(1)
    return found


def test_compose_services_are_the_catalogs_departments() -> None:
    """One node service per department, named after it, running that party's node."""
    nodes = _node_services()
    assert set(nodes) == DEPARTMENTS
    assert all(service == party for service, party in nodes.items())


def test_the_cluster_profile_runs_a_second_process_of_every_department() -> None:
    """`--profile cluster`: `<party>-2` beside each department, and three broker nodes."""
    replicas = _node_services(profile="cluster")
    assert replicas == {f"{party}-2": party for party in DEPARTMENTS}
    for node in ("rabbitmq-2", "rabbitmq-3"):
        assert re.search(rf"\n  {node}:\n    <<: \*rabbitmq-peer\n    hostname: {node}\n", COMPOSE)
    peer_config = (REPO / "deploy/rabbitmq-cluster.conf").read_text(encoding="utf-8")
    assert "cluster_formation.classic_config.nodes.1 = rabbit@rabbitmq" in peer_config


def test_compose_certifies_every_identity_but_the_console() -> None:
    """Departments and the collector get certificates; the collector runs no node."""
    [issued] = re.findall(r"for party in ([a-z -]+); do", COMPOSE)
    assert set(issued.split()) == {p.id for p in CATALOG.parties if p.role.value != "console"}
    assert "collector" in set(issued.split()) - set(_node_services())


def test_the_check_sees_a_missing_department() -> None:
    """A compose file without Improvement's node is found out."""
    block = '  improvement:\n    <<: *exchange\n    command: ["node", "run", "improvement"]\n\n'
    assert block in COMPOSE
    assert set(_node_services(COMPOSE.replace(block, ""))) == DEPARTMENTS - {"improvement"}
