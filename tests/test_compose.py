"""docker-compose.yml agrees with the catalog: a node per department, a certificate per identity."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

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


def test_compose_certifies_every_identity() -> None:
    """Departments, the collector and the console get certificates; only departments run
    nodes."""
    [issued] = re.findall(r"for party in ([a-z -]+); do", COMPOSE)
    assert set(issued.split()) == {p.id for p in CATALOG.parties}
    assert {"collector", "console"} <= set(issued.split()) - set(_node_services())


def test_the_check_sees_a_missing_department() -> None:
    """A compose file without Improvement's node is found out."""
    block = '  improvement:\n    <<: *exchange\n    command: ["node", "run", "improvement"]\n\n'
    assert block in COMPOSE
    assert set(_node_services(COMPOSE.replace(block, ""))) == DEPARTMENTS - {"improvement"}


def _long_running(compose: str = COMPOSE) -> dict[str, dict[str, Any]]:
    """Compose services that run a node or the collector, as compose reads them (anchors merged)."""
    services = yaml.safe_load(compose)["services"]
    return {
        name: service
        for name, service in services.items()
        if service.get("command", [])[:2] in (["node", "run"], ["audit", "collect"])
    }


def _without_healthcheck(compose: str = COMPOSE) -> set[str]:
    """Node and collector services that do not ask their own /ready, or serve no probes."""
    missing = set()
    for name, service in _long_running(compose).items():
        check = service.get("healthcheck", {})
        environment = service.get("environment", {})
        if (
            check.get("test") != ["CMD", "exchange", "probe"]
            or check.get("disable", False)
            or not environment.get("EXCHANGE_METRICS_PORT")
            or environment.get("EXCHANGE_METRICS_HOST") != "0.0.0.0"  # noqa: S104 (a container)
        ):
            missing.add(name)
    return missing


def test_every_node_and_the_collector_has_a_healthcheck() -> None:
    """Each asks its own /ready with `exchange probe`, and serves it on EXCHANGE_METRICS_PORT."""
    assert set(_long_running()) >= DEPARTMENTS | {"audit-collector"}
    assert _without_healthcheck() == set()


def test_the_console_asks_its_own_ready() -> None:
    """The console's healthcheck asks /ready on the port it serves."""
    console = yaml.safe_load(COMPOSE)["services"]["console"]
    assert console["command"] == ["console", "serve"]
    assert console["healthcheck"]["test"] == ["CMD", "exchange", "probe", "--port", "8470"]
    assert "127.0.0.1:8470:8470" in console["ports"]


def test_the_healthcheck_check_sees_a_service_without_one() -> None:
    """A node service that turns the healthcheck off is found out."""
    block = '  improvement:\n    <<: *exchange\n    command: ["node", "run", "improvement"]\n'
    broken = COMPOSE.replace(block, block + "    healthcheck:\n      disable: true\n")
    assert _without_healthcheck(broken) == {"improvement"}


def test_the_image_checks_its_own_health() -> None:
    """The Dockerfile serves the probes by default and asks /ready as its HEALTHCHECK."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"EXCHANGE_METRICS_PORT=\d+", dockerfile)
    assert re.search(r'HEALTHCHECK [^\n]*\\\n\s+CMD \["exchange", "probe"\]', dockerfile)
