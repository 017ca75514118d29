"""Helpers of the HTTP bridge tests: a callback target, HTTP calls, the OpenAPI schemas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from jsonschema_rs import Draft202012Validator

from exchange.node import LATER, IncomingRequest, Later
from tests.bus.helpers import eventually

OPENAPI = Path(__file__).resolve().parents[2] / "exchange/data/schemas" / "http-bridge.openapi.json"
TREES: dict[str, Any] = {
    "applicant": {"name": "Gulnara Safina"},
    "address": "Kazan, ul. Pushkina 12",
    "trees": [{"species": "birch", "count": 2}],
}
GRANTED = {"decision": "granted", "permit_number": "TF-7"}


def conforms(component: str, instance: Any) -> None:
    """``instance`` is valid against a schema of the OpenAPI document's components."""
    document = json.loads(OPENAPI.read_text())
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    Draft202012Validator(schema).validate(instance)


class Target:
    """A tiny departmental system: takes callbacks, after answering 500 ``failures`` times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts: list[dict[str, Any]] = []
        self.taken: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Target:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/callbacks", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/callbacks"
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert request.headers["X-Exchange-Callback-Id"] == body["callback_id"]
        self.attempts.append(body)
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        self.taken.append(body)
        return web.Response(status=204)

    async def wait_kinds(self, *kinds: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait until the callbacks taken are of these kinds, in this order."""

        async def arrived() -> bool:
            return [c["kind"] for c in self.taken] == list(kinds)

        await eventually(arrived, timeout, f"callbacks {kinds}, got {self.taken}")
        return self.taken


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    """Make an HTTP call; return the status and the JSON body."""
    async with http.request(method, url, json=body) as response:
        return response.status, await response.json()


def later(into: asyncio.Queue[str]) -> Callable[[IncomingRequest], Awaitable[Later]]:
    """A provider handler that hands each request on (its id into ``into``)."""

    async def hand_over(request: IncomingRequest) -> Later:
        await into.put(request.message_id)
        return LATER

    return hand_over
