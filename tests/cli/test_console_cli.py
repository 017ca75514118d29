"""``exchange console``: users added from stdin, no default user, and a served console."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner, Result

from exchange.cli import app
from exchange.console.auth import verify_password
from tests.bus.conftest import AMQP_URL

PASSWORD = "correct horse battery"


def add(users: Path, *args: str, password: str = PASSWORD) -> Result:
    """``exchange console user add ARGS`` with the password on stdin (not a terminal)."""
    return CliRunner().invoke(
        app,
        ["console", "user", "add", *args],
        input=password + "\n",
        env={"EXCHANGE_CONSOLE_USERS": str(users)},
    )


def test_user_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    """The users file gets the user's role and a scrypt hash of the password, never it."""
    users = tmp_path / "users.json"
    result = add(users, "rinat", "--role", "admin")
    assert result.exit_code == 0, result.output
    entry = json.loads(users.read_text())["users"]["rinat"]
    assert entry["role"] == "admin"
    verify_password(entry["password"], PASSWORD)
    assert PASSWORD not in users.read_text()


@pytest.mark.parametrize(
    ("args", "password", "code"),
    [
        (("alsu", "--role", "support"), "short", "users-file-invalid"),
        (("Bad Name", "--role", "support"), PASSWORD, "users-file-invalid"),
    ],
)
def test_user_add_refuses(tmp_path: Path, args: tuple[str, ...], password: str, code: str) -> None:
    """A short password or a bad name is refused with its code, and nothing is written."""
    users = tmp_path / "users.json"
    result = add(users, *args, password=password)
    assert result.exit_code == 1
    assert f"error {code}" in result.output
    assert not users.exists()


def test_user_add_needs_a_role(tmp_path: Path) -> None:
    """There is no default role either."""
    result = add(tmp_path / "users.json", "alsu")
    assert result.exit_code != 0
    assert "--role" in result.output


def test_serve_refuses_without_users(cli: Callable[..., Result], ca: Path, tmp_path: Path) -> None:
    """No users file: no console (there is no default user or password)."""
    result = cli("console", "serve", env={"EXCHANGE_CONSOLE_USERS": str(tmp_path / "none.json")})
    assert result.exit_code == 1
    assert "users-file-invalid" in result.output
    assert "exchange console user add" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.rabbit
async def test_serve_answers_until_sigterm(ca: Path, tmp_path: Path) -> None:
    """`exchange console serve` says ready, serves the login page with its cookie and
    headers, and exits 0 on SIGTERM."""
    users = tmp_path / "users.json"
    assert add(users, "alsu", "--role", "support").exit_code == 0
    port = _free_port()
    env = {
        **os.environ,
        "EXCHANGE_CERTS_DIR": str(ca),
        "EXCHANGE_CONSOLE_USERS": str(users),
        "EXCHANGE_CONSOLE_PORT": str(port),
        "EXCHANGE_AUDIT_PATH": str(tmp_path / "central.db"),
        "EXCHANGE_AMQP_URL": AMQP_URL,
        "EXCHANGE_BUS_PREFIX": f"tcs{uuid.uuid4().hex[:8]}.",  # no feed there: served without
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exchange.cli", "console", "serve",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().startswith(f"ready console http://127.0.0.1:{port}/"), line
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/login") as response,
        ):
            assert response.status == 200
            assert 'name="csrf"' in await response.text()
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie
            assert "Secure" in cookie
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
