"""The highest CRL numbers a node has accepted, kept in its party's store across restarts."""

from __future__ import annotations

import asyncio
import json

from exchange.exceptions import StoreError
from exchange.node.store.base import Store

META_KEY = "crl-numbers"


class StoreCrlNumbers:
    """``CrlNumbers`` in the store's meta table, for the node's trust store.

    The trust store asks synchronously (it judges a CRL inside a signature check); the numbers
    are read once at start and each new highest one is written back by a task right away.
    Signature checks run in worker threads: a write is handed to the node's loop.
    """

    def __init__(
        self,
        store: Store,
        numbers: dict[str, int],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._store = store
        self._numbers = numbers
        self._loop = loop or asyncio.get_running_loop()
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    async def load(cls, store: Store) -> StoreCrlNumbers:
        """Read the numbers kept in ``store`` (an open store).

        Raises:
            StoreError (store-error): the kept value is not what this class wrote.
        """
        raw = await store.get_meta(META_KEY)
        try:
            numbers = json.loads(raw) if raw else {}
            return cls(store, {str(key): int(value) for key, value in numbers.items()})
        except (ValueError, TypeError, AttributeError):
            raise StoreError(
                f"the store's {META_KEY!r} meta value is corrupt; restore the store from a "
                "backup (deleting the value would let an older CRL be accepted once)"
            ) from None

    def highest(self, issuer: str) -> int | None:
        """The highest CRL number accepted from ``issuer``, or None."""
        return self._numbers.get(issuer)

    def remember(self, issuer: str, number: int) -> None:
        """Keep ``number`` now, and write it to the store in the background."""
        self._numbers[issuer] = number
        value = json.dumps(self._numbers, sort_keys=True)
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:  # a verification worker thread
            on_loop = False
        if on_loop:
            self._write(value)
        else:
            self._loop.call_soon_threadsafe(self._write, value)

    def _write(self, value: str) -> None:
        task = self._loop.create_task(self._store.set_meta(META_KEY, value))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Wait until every number remembered so far is committed to the store."""
        while self._writes:
            await asyncio.gather(*self._writes)
