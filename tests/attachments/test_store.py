"""The attachment store: content addressing, atomic installs, resumable partials, hash checks."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from exchange.attachments.store import CHECKPOINT_BYTES, AttachmentFile, AttachmentStore
from exchange.envelope.model import Attachment
from exchange.exceptions import AttachmentMismatch, AttachmentMissing, AttachmentRefused


def sha(data: bytes) -> str:
    """SHA-256 hex of ``data``."""
    return hashlib.sha256(data).hexdigest()


async def stream(*blocks: bytes) -> AsyncIterator[bytes]:
    """An async byte stream of ``blocks``."""
    for block in blocks:
        yield block


class TestPut:
    async def test_a_file_is_stored_under_its_sha256(self, tmp_path: Path) -> None:
        """A file copied in is found under its SHA-256 with its size and bytes."""
        store = AttachmentStore(tmp_path / "a")
        source = tmp_path / "plan.pdf"
        source.write_bytes(b"%PDF-1.4 site plan" * 1000)
        stored = await store.put(source)
        assert stored.sha256 == sha(source.read_bytes())
        assert stored.size == source.stat().st_size
        with store.open(stored.sha256) as handle:
            assert handle.read() == source.read_bytes()
        assert store.objects() == [stored.sha256]

    async def test_a_stream_is_stored_and_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        """An async stream is hashed while copied; nothing is left under tmp/."""
        store = AttachmentStore(tmp_path / "a")
        stored = await store.put(stream(b"one ", b"two ", b"three"))
        assert stored.sha256 == sha(b"one two three")
        assert list((store.root / "tmp").iterdir()) == []

    async def test_over_the_limit_is_refused_and_nothing_kept(self, tmp_path: Path) -> None:
        """Past ``max_size`` the copy stops with attachment-refused; no object, no temp file."""
        store = AttachmentStore(tmp_path / "a")
        with pytest.raises(AttachmentRefused):
            await store.put(stream(b"x" * 600, b"x" * 600), max_size=1000)
        assert store.objects() == []
        assert list((store.root / "tmp").iterdir()) == []

    def test_a_missing_object_is_named(self, tmp_path: Path) -> None:
        """Opening what the store does not hold raises attachment-missing."""
        store = AttachmentStore(tmp_path / "a")
        with pytest.raises(AttachmentMissing):
            store.open("0" * 64)

    def test_a_handle_reads_the_checked_file(self, tmp_path: Path) -> None:
        """An AttachmentFile gives the signed entry's fields and a handle on the object."""
        store = AttachmentStore(tmp_path / "a")
        partial = store.partial(sha(b"photo"), 5)
        partial.append(0, b"photo")
        partial.finish()
        entry = Attachment(
            name="tree.jpg", media_type="image/jpeg", size=5, sha256=sha(b"photo"), location="x"
        )
        file = AttachmentFile(entry, store)
        with file.open() as handle:
            assert handle.read() == b"photo"
        assert (file.name, file.media_type, file.size) == ("tree.jpg", "image/jpeg", 5)


class TestPartial:
    def test_complete_and_matching_is_installed(self, tmp_path: Path) -> None:
        """Chunks appended in order and matching the hash become the object; the partial goes."""
        store = AttachmentStore(tmp_path / "a")
        data = os.urandom(3000)
        partial = store.partial(sha(data), len(data))
        for offset in range(0, len(data), 1000):
            partial.append(offset, data[offset : offset + 1000])
        assert partial.complete
        partial.finish()
        assert store.path(sha(data)).read_bytes() == data
        assert list((store.root / "partial").iterdir()) == []

    def test_hash_mismatch_is_refused_and_discarded(self, tmp_path: Path) -> None:
        """Bytes that hash to another SHA-256 are never installed; the partial is thrown away."""
        store = AttachmentStore(tmp_path / "a")
        partial = store.partial(sha(b"genuine"), 7)
        partial.append(0, b"forgery")
        with pytest.raises(AttachmentMismatch):
            partial.finish()
        assert store.get(sha(b"genuine")) is None
        assert list((store.root / "partial").iterdir()) == []

    def test_running_past_the_size_is_a_mismatch(self, tmp_path: Path) -> None:
        """More bytes than announced is attachment-mismatch."""
        store = AttachmentStore(tmp_path / "a")
        partial = store.partial(sha(b"abc"), 3)
        with pytest.raises(AttachmentMismatch):
            partial.append(0, b"abcd")

    def test_resumes_from_the_durable_offset_only(self, tmp_path: Path) -> None:
        """After a crash, a partial resumes at its last checkpoint; later bytes are cut off."""
        store = AttachmentStore(tmp_path / "a")
        data = os.urandom(CHECKPOINT_BYTES + 4096)
        partial = store.partial(sha(data), len(data))
        partial.append(0, data[:CHECKPOINT_BYTES])  # a checkpoint happens here
        partial.append(CHECKPOINT_BYTES, data[CHECKPOINT_BYTES : CHECKPOINT_BYTES + 100])
        # A crash: the file object is dropped without close(); 100 bytes are past the offset.
        resumed = store.partial(sha(data), len(data))
        assert resumed.offset == CHECKPOINT_BYTES
        resumed.append(CHECKPOINT_BYTES, data[CHECKPOINT_BYTES:])
        resumed.finish()
        assert store.path(sha(data)).read_bytes() == data

    def test_close_keeps_what_was_written(self, tmp_path: Path) -> None:
        """close() checkpoints, so a clean stop resumes exactly where it was."""
        store = AttachmentStore(tmp_path / "a")
        data = b"0123456789"
        partial = store.partial(sha(data), 10)
        partial.append(0, data[:4])
        partial.close()
        resumed = store.partial(sha(data), 10)
        assert resumed.offset == 4
        resumed.append(4, data[4:])
        assert resumed.finish().size == 10

    def test_a_resumed_partial_is_hashed_again(self, tmp_path: Path) -> None:
        """Bytes changed on disk while stopped are caught by the hash at the end."""
        store = AttachmentStore(tmp_path / "a")
        data = b"0123456789"
        partial = store.partial(sha(data), 10)
        partial.append(0, data[:4])
        partial.close()
        data_file = store.root / "partial" / f"{sha(data)}.part"
        data_file.write_bytes(b"XXXX")
        resumed = store.partial(sha(data), 10)
        resumed.append(4, data[4:])
        with pytest.raises(AttachmentMismatch):
            resumed.finish()

    def test_another_size_for_the_same_hash_starts_over(self, tmp_path: Path) -> None:
        """A partial's offset belongs to its announced size; another size starts from 0."""
        store = AttachmentStore(tmp_path / "a")
        partial = store.partial(sha(b"0123456789"), 10)
        partial.append(0, b"0123")
        partial.close()
        assert store.partial(sha(b"0123456789"), 12).offset == 0

    def test_no_object_is_visible_before_it_is_complete(self, tmp_path: Path) -> None:
        """Until finish(), the final name holds nothing (partials live elsewhere)."""
        store = AttachmentStore(tmp_path / "a")
        partial = store.partial(sha(b"abcdef"), 6)
        partial.append(0, b"abc")
        assert store.get(sha(b"abcdef")) is None
        assert not store.path(sha(b"abcdef")).exists()
