"""README.md runs as written: every shell and Python block, in order, right after the demo.

Each block carries a marker comment on the line before its fence:
``<!-- readme-test: run -->``, ``<!-- readme-test: run-background until <text> -->`` (started,
then waited on until it prints ``<text>``; stopped at the end) or
``<!-- readme-test: skip: <reason> -->``. An unmarked block fails the test, so the README
cannot grow a command nobody runs. The blocks run in a temporary directory (with ``.venv``
and ``examples`` linked in), on the local broker under a bus prefix of their own, with the PKI
``make demo`` makes; shell variables carry from one block to the next as in one terminal.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.catalog import read_catalog_data
from exchange.cli.demo import ensure_demo_pki
from exchange.config import packaged
from exchange.pki.authority import CertificateAuthority
from exchange.transport.admin import drop_topology
from exchange.transport.names import BusNames
from tests.bus.conftest import AMQP_URL

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "console": "sh", "python": "python"}
_BLOCK_TIMEOUT = 300  # seconds: a guard against a hang, not a measure of speed
_READY_TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md and what its marker says to do with it."""

    line: int  # of the opening fence, 1-based
    language: str  # "sh" or "python"
    action: str  # "run", "background" or "skip"
    argument: str  # the text to wait for, or the reason for skipping
    code: str


def readme_blocks(text: str) -> tuple[list[Block], list[str]]:
    """The shell and Python blocks of ``text``, and a complaint per block without a marker."""
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        index = end + 1
        language = _LANGUAGES.get(fence.group(1))
        if language is None:
            continue  # tables of output, JSON examples: nothing to run
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        where = f"README.md line {start + 1}"
        if marker is None:
            problems.append(f"{where}: no <!-- readme-test: ... --> marker before the block")
            continue
        action, argument = _parse_marker(marker.group(1))
        if action is None:
            problems.append(f"{where}: unknown marker {marker.group(1)!r}")
            continue
        code = "\n".join(lines[start + 1 : end]) + "\n"
        blocks.append(Block(start + 1, language, action, argument, code))
    return blocks, problems


def _parse_marker(text: str) -> tuple[str | None, str]:
    if text == "run":
        return "run", ""
    if text.startswith("run-background until ") and text[len("run-background until ") :]:
        return "background", text[len("run-background until ") :]
    if text.startswith("skip:") and text[len("skip:") :].strip():
        return "skip", text[len("skip:") :].strip()
    return None, ""


def test_every_block_has_a_marker() -> None:
    """Each shell or Python block of README.md says if it runs, in the background, or why not."""
    blocks, problems = readme_blocks(README.read_text())
    assert problems == []
    assert any(block.action == "run" for block in blocks)


def test_an_unmarked_or_unknown_marker_is_reported() -> None:
    """A block without a marker, or with a marker the test does not know, is named by line."""
    text = "```sh\nls\n```\n<!-- readme-test: maybe -->\n```python\npass\n```\n"
    blocks, problems = readme_blocks(text)
    assert blocks == []
    assert problems == [
        "README.md line 1: no <!-- readme-test: ... --> marker before the block",
        "README.md line 5: unknown marker 'maybe'",
    ]


class Shell:
    """Runs blocks one after another in ``home`` as one terminal would, and some beside it."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.state = home / ".readme-state.sh"  # exported variables, carried between blocks
        self.background: list[subprocess.Popen[bytes]] = []
        subprocess.run(["bash", "-c", f"export -p > {self.state}"], env=env, cwd=home, check=True)

    def run(self, block: Block) -> str:
        """Run a block to its end; fail with its output if it exits non-zero."""
        script = self._script(block)
        result = subprocess.run(
            ["bash", "-c", f"set -eo pipefail\nset -a\n. {self.state}\n{script}\n"
             f"set +a\nexport -p > {self.state}\n"],
            cwd=self.home,
            env={"HOME": os.environ.get("HOME", str(self.home))},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=_BLOCK_TIMEOUT,
            check=False,
        )  # fmt: skip
        output = result.stdout.decode(errors="replace")
        assert result.returncode == 0, f"README.md line {block.line} failed:\n{output}"
        return output

    def start(self, block: Block) -> None:
        """Start a block in its own session and wait until it prints ``block.argument``."""
        log = self.home / f".readme-block-{block.line}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                ["bash", "-c", f". {self.state}\n{self._script(block)}"],
                cwd=self.home,
                env={"HOME": os.environ.get("HOME", str(self.home))},
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append(process)
        deadline = time.monotonic() + _READY_TIMEOUT  # a hang guard: readiness is the signal
        while block.argument not in log.read_text(errors="replace"):
            output = log.read_text(errors="replace")
            assert process.poll() is None, f"README.md line {block.line} exited:\n{output}"
            assert time.monotonic() < deadline, (
                f"README.md line {block.line} never ready:\n{output}"
            )
            time.sleep(0.1)

    def _script(self, block: Block) -> str:
        if block.language == "sh":
            return block.code
        path = self.home / f".readme-block-{block.line}.py"
        path.write_text(block.code)
        return f"python {path}"

    def stop(self) -> None:
        """Stop the background blocks by their process group (each has its own session)."""
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.background:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    """A scratch checkout after ``make demo``: the demo's PKI, a venv, the examples, own prefix."""
    home = tmp_path / "checkout"
    home.mkdir()
    (home / ".venv").symlink_to(REPO / ".venv")
    (home / "examples").symlink_to(REPO / "examples")
    city = read_catalog_data(packaged("catalog.toml"))
    ensure_demo_pki(CertificateAuthority(home / "certs", SYSTEM_CLOCK), city)
    prefix = f"rd{uuid.uuid4().hex[:8]}."
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXCHANGE_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        EXCHANGE_CERTS_DIR=str(home / "certs"),
        EXCHANGE_STORE_DIR=str(home / "var"),
        EXCHANGE_AUDIT_PATH=str(home / "var" / "audit-central.db"),
        EXCHANGE_AMQP_URL=AMQP_URL,
        EXCHANGE_BUS_PREFIX=prefix,
        COLUMNS="200",
    )
    runner = Shell(home, env)
    try:
        yield runner
    finally:
        runner.stop()
        parties = [party.id for party in read_catalog_data(packaged("catalog.toml")).parties]
        asyncio.run(drop_topology(AMQP_URL, BusNames(prefix), parties))


@pytest.mark.slow
@pytest.mark.rabbit
def test_readme_runs_as_written(shell: Shell) -> None:
    """Every block marked run or run-background succeeds, in README order, after the demo."""
    blocks, problems = readme_blocks(README.read_text())
    assert problems == []
    outputs: dict[int, str] = {}
    for block in blocks:
        if block.action == "run":
            outputs[block.line] = shell.run(block)
        elif block.action == "background":
            shell.start(block)
    joined = "\n".join(outputs.values())
    # What the blocks promise, checked on what they printed.
    assert "ok: signature, certificate and expiry valid (xml)" in joined
    assert '"answer": "response"' in joined
    assert "bundle ok" in joined
    assert "response {'cadastral_number'" in joined
