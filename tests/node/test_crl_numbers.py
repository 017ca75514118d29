"""The node's CRL numbers in its party store: kept across reopening, corruption named."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from exchange._clock import FrozenClock
from exchange.exceptions import StoreError
from exchange.node.crl_numbers import META_KEY, StoreCrlNumbers
from exchange.node.store import SQLiteStore


async def test_numbers_survive_reopening_the_store(tmp_path: Path, clock: FrozenClock) -> None:
    """A number remembered and flushed is there when the store is opened again."""
    store = SQLiteStore(tmp_path / "party.db", "improvement", clock)
    await store.open()
    numbers = await StoreCrlNumbers.load(store)
    assert numbers.highest("root") is None
    numbers.remember("root", 42)
    await numbers.flush()
    await store.close()
    reopened = SQLiteStore(tmp_path / "party.db", "improvement", clock)
    await reopened.open()
    try:
        assert (await StoreCrlNumbers.load(reopened)).highest("root") == 42
    finally:
        await reopened.close()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"root": "many"}'])
async def test_corrupt_value_is_a_store_error(tmp_path: Path, clock: FrozenClock, raw: str) -> None:
    """A meta value that is not a number map: store-error naming the key, not a traceback."""
    store = SQLiteStore(tmp_path / "party.db", "improvement", clock)
    await store.open()
    try:
        await store.set_meta(META_KEY, raw)
        with pytest.raises(StoreError, match=META_KEY) as info:
            await StoreCrlNumbers.load(store)
        assert info.value.code == "store-error"
    finally:
        await store.close()


async def test_number_remembered_in_a_verification_thread_is_stored(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A CRL judged in a worker thread (nodes verify off the loop) still reaches the store."""
    store = SQLiteStore(tmp_path / "party.db", "improvement", clock)
    await store.open()
    try:
        numbers = await StoreCrlNumbers.load(store)
        await asyncio.to_thread(numbers.remember, "root", 7)
        assert numbers.highest("root") == 7

        async def stored() -> str | None:
            await numbers.flush()
            return await store.get_meta(META_KEY)

        for _ in range(100):  # the write is handed to the loop; let it run
            if await stored():
                break
            await asyncio.sleep(0.01)
        assert json.loads(await stored() or "{}") == {"root": 7}
    finally:
        await store.close()
