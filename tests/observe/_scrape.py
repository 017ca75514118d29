"""Reading a probe server over HTTP, as Prometheus and a healthcheck do."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""(sample name, sorted labels) -> value."""


async def get(port: int, path: str) -> tuple[int, Any]:
    """GET ``path`` on 127.0.0.1:``port``; the status and the JSON (or text) body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(10)) as answer,
    ):
        if answer.content_type == "application/json":
            return answer.status, await answer.json()
        return answer.status, await answer.text()


async def scrape(port: int) -> Samples:
    """Every sample of /metrics."""
    status, text = await get(port, "/metrics")
    assert status == 200, text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def by(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples keyed by the values of the labels ``keys`` (non-zero ones only)."""
    found: dict[tuple[str, ...], float] = {}
    for (n, labels), value in samples.items():
        if n == name and value:
            as_dict = dict(labels)
            found[tuple(as_dict[k] for k in keys)] = value
    return found
