"""A RabbitMQ node of a test's own, for tests that stop, kill or partition a broker.

DESIGN.md, Own broker for broker failures: the machine's broker on 5672 serves everyone
else's tests, so a test that takes a broker down starts its own node (own name, ports,
cookie and data directory, loopback only, no plugins) and stops it by its pid. The node can
be stopped and started again on the same ports and data directory, so durable queues and
their messages survive, as they would on a real restart. ``BrokerNode`` is parameterised by
name, ports and directory so that several can later form a cluster.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika

_START_TIMEOUT = 120.0  # a cold start on a busy 2-core machine takes 10-30 s
_STOP_TIMEOUT = 60.0
_SCRIPTS = Path("/usr/lib/rabbitmq/bin")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_script() -> str:
    # The scripts in /usr/lib/rabbitmq/bin run as the caller; /usr/sbin's wrapper would
    # switch to the rabbitmq user, which cannot write our temporary directory.
    script = _SCRIPTS / "rabbitmq-server"
    if script.is_file():
        return str(script)
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise RuntimeError("rabbitmq-server is not installed: apt-get install rabbitmq-server")
    return found


class BrokerFailed(RuntimeError):
    """The test broker did not start, or did not stop, in time."""


@dataclass
class BrokerNode:
    """One RabbitMQ node in ``base``: start, stop (by pid), kill, start again."""

    base: Path
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}@localhost")
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    # For a cluster (tests/_cluster.py): the Erlang cookie its nodes share, and the nodes it
    # joins on its first start (classic-config peer discovery).
    cookie: str | None = None
    peers: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The AMQP URL of this node (guest may log in: it is on loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid(self) -> int | None:
        """The Erlang VM's pid while it runs."""
        return self.process.pid if self.process is not None else None

    def environment(self) -> dict[str, str]:
        """Write the node's config files; the environment its scripts (server, ctl) run with."""
        self.base.mkdir(parents=True, exist_ok=True)
        home = self.base / "home"  # its own Erlang cookie, created at the first start
        home.mkdir(exist_ok=True)
        cookie = home / ".erlang.cookie"
        if self.cookie is not None and not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)  # Erlang refuses a cookie others may read
        config = self.base / "rabbitmq.conf"
        config.write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
            + "".join(
                f"cluster_formation.classic_config.nodes.{i} = {peer}\n"
                for i, peer in enumerate(self.peers, 1)
            )
            + ("cluster_formation.peer_discovery_backend = classic_config\n" if self.peers else "")
        )
        plugins = self.base / "enabled_plugins"
        plugins.write_text("[].\n")  # no management plugin: no port 15672 to clash on
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        env.update(
            HOME=str(home),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_CONFIG_FILE=str(config),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_PID_FILE=str(self.base / "rabbit.pid"),
            # Erlang distribution on loopback only.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            # Makes the script exec the VM: the pid we hold is the broker's, not a shell's.
            RUNNING_UNDER_SYSTEMD="1",
        )
        return env

    async def start(self) -> None:
        """Start the node (again, on the same ports and data) and wait until AMQP answers.

        Raises:
            BrokerFailed: it exited, or did not accept an AMQP connection in time.
        """
        if self.process is not None and self.process.poll() is None:
            return
        env = self.environment()
        log = (self.base / "stdout.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [_server_script()],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.base,
            )
        finally:
            log.close()
        try:
            await asyncio.wait_for(self._until_ready(), _START_TIMEOUT)
        except TimeoutError:
            self.kill()
            raise BrokerFailed(
                f"broker {self.name} accepted no AMQP connection on port {self.amqp_port} "
                f"within {_START_TIMEOUT:.0f} s; see {self.base / 'log'}"
            ) from None

    async def _until_ready(self) -> None:
        # The readiness signal is a completed AMQP handshake, not a port that accepts TCP:
        # the listener opens before the node can serve connections.
        while True:
            if self.process is None or self.process.poll() is not None:
                raise BrokerFailed(
                    f"broker {self.name} exited while starting; see {self.base / 'stdout.log'}"
                )
            try:
                connection = await aio_pika.connect(self.url, timeout=5)
            except (OSError, aio_pika.exceptions.AMQPError, TimeoutError):
                await asyncio.sleep(0.2)  # poll interval of the readiness check
                continue
            await connection.close()
            return

    def stop(self) -> None:
        """Stop the node cleanly (SIGTERM to its pid) and wait for it to exit.

        Raises:
            BrokerFailed: it did not exit in time (it is then killed).
        """
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the node (SIGKILL to its pid): no chance to close connections or flush."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            self.process = None
            return
        os.kill(process.pid, signum)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(_STOP_TIMEOUT)
            raise BrokerFailed(f"broker {self.name} ignored {signum.name}; killed") from None
        finally:
            self.process = None
