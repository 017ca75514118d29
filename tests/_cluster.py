"""A three-node RabbitMQ cluster of a test's own (DESIGN.md, Own broker for broker failures).

Three ``BrokerNode``s on their own ports, names and data directories, sharing an Erlang cookie
of their own, loopback only; the machine's broker on 5672 keeps running. The first node forms
the cluster, the others join it on their first start (classic-config peer discovery), one
after another so that none forms a cluster of its own. Any node can be killed by its pid and
started again; it rejoins with its data.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests._broker import _SCRIPTS, BrokerFailed, BrokerNode

_JOIN_TIMEOUT = 120.0


@dataclass
class BrokerCluster:
    """Three RabbitMQ nodes forming one cluster under ``base``."""

    nodes: tuple[BrokerNode, ...]

    @classmethod
    def create(cls, base: Path, size: int = 3) -> BrokerCluster:
        """Describe (not start) a cluster of ``size`` nodes in ``base``."""
        cookie = secrets.token_hex(16).upper()
        tag = uuid.uuid4().hex[:8]
        names = tuple(f"c{tag}n{i}@localhost" for i in range(size))
        nodes = tuple(
            BrokerNode(base / f"n{i}", name=name, cookie=cookie, peers=names)
            for i, name in enumerate(names)
        )
        return cls(nodes)

    @property
    def urls(self) -> tuple[str, ...]:
        """Each node's AMQP URL, in node order."""
        return tuple(node.url for node in self.nodes)

    async def start(self) -> None:
        """Start the nodes one after another and wait until all are running in one cluster.

        Raises:
            BrokerFailed: a node did not start, or the cluster did not form in time.
        """
        for node in self.nodes:
            await node.start()
        await asyncio.wait_for(self._until_formed(), _JOIN_TIMEOUT)

    async def _until_formed(self) -> None:
        while len(await asyncio.to_thread(self.running_nodes)) < len(self.nodes):
            await asyncio.sleep(0.5)  # poll interval of the membership check

    def running_nodes(self) -> list[str]:
        """The names of the cluster's running nodes, as its first live node sees them."""
        live = next((node for node in self.nodes if node.pid is not None), None)
        if live is None:
            return []
        result = subprocess.run(
            [
                str(_SCRIPTS / "rabbitmqctl"),
                "-n",
                live.name,
                "cluster_status",
                "--formatter",
                "json",
            ],
            env=live.environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerFailed(f"rabbitmqctl on {live.name} failed: {result.stderr.strip()}")
        running: list[str] = json.loads(result.stdout)["running_nodes"]
        return running

    def kill_all(self) -> None:
        """Kill every node by its pid (a test's cleanup)."""
        for node in self.nodes:
            node.kill()
