"""The CA's files: all-or-nothing operations across a crash, and modes whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from exchange._clock import FrozenClock
from exchange.exceptions import PKIFileCorrupt
from exchange.pki import _files
from exchange.pki.authority import CertificateAuthority, KeyType
from exchange.pki.trust import CrlNumberFile
from exchange.testing import ThrowawayPKI


class Crash(Exception):
    """The process dying at this point."""


def crash_at(monkeypatch: pytest.MonkeyPatch, rename: int) -> list[tuple[Path, Path]]:
    """Make the ``rename``-th rename (1-based) of the next commit raise; return those done."""
    done: list[tuple[Path, Path]] = []
    move = _files._move

    def failing(source: Path, target: Path) -> None:
        if len(done) + 1 == rename:
            raise Crash(target.name)
        move(source, target)
        done.append((source, target))

    monkeypatch.setattr(_files, "_move", failing)
    return done


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (lock file aside) with its bytes."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and p.name != _files.LOCK_FILE
    }


def crl_serials(path: Path) -> set[str]:
    """The serials (hex) the published CRL lists."""
    crl = x509.load_pem_x509_crl((path / "crl.pem").read_bytes())
    return {f"{entry.serial_number:x}" for entry in crl}


def assert_consistent(ca: CertificateAuthority) -> None:
    """Index and CRL agree, every indexed certificate has its files, no temporary file is left."""
    index = ca.index()  # finishes an interrupted operation first
    assert crl_serials(ca.path) == {e.serial for e in index if e.revoked_at is not None}
    for entry in index:
        folder = ca.path / "parties" / entry.party
        assert (folder / f"{entry.serial}.pem").exists()
        assert (folder / f"{entry.serial}.key").exists()
    with _files.locked(ca.path):
        pass
    assert not [p for p in ca.path.rglob("*.tmp")]
    assert not (ca.path / _files.JOURNAL_FILE).exists()


# revoke renames: journal, crl.pem, index.json
@pytest.mark.parametrize("rename", [1, 2, 3])
def test_revoke_interrupted_at_any_rename_leaves_the_ca_consistent(
    fresh_pki: ThrowawayPKI, monkeypatch: pytest.MonkeyPatch, rename: int
) -> None:
    """A crash before the journal changes nothing; after it, the next operation completes it."""
    before = snapshot(fresh_pki.path)
    serial = fresh_pki.authority.active("single-center")[0].serial
    done = crash_at(monkeypatch, rename)
    with pytest.raises(Crash):
        fresh_pki.authority.revoke("single-center")
    monkeypatch.undo()
    if rename == 2:
        assert [target.name for _, target in done] == [_files.JOURNAL_FILE]
    reopened = CertificateAuthority(fresh_pki.path, FrozenClock())
    assert_consistent(reopened)
    if rename == 1:
        assert snapshot(fresh_pki.path) == before
        reopened.revoke("single-center")  # the retry finds it still to revoke
    assert serial in crl_serials(fresh_pki.path)
    assert [e.serial for e in reopened.index() if e.revoked_at] == [serial]


# issue renames: journal, key, certificate, index.json
@pytest.mark.parametrize("rename", [1, 2, 3, 4])
def test_issue_interrupted_at_any_rename_leaves_the_ca_consistent(
    fresh_pki: ThrowawayPKI, monkeypatch: pytest.MonkeyPatch, rename: int
) -> None:
    """An interrupted issue leaves either no trace or the whole certificate, once recovered."""
    before = snapshot(fresh_pki.path)
    crash_at(monkeypatch, rename)
    with pytest.raises(Crash):
        fresh_pki.authority.issue("single-center-annex")
    monkeypatch.undo()
    reopened = CertificateAuthority(fresh_pki.path, FrozenClock())
    assert_consistent(reopened)
    issued = reopened.active("single-center-annex")
    if rename == 1:
        assert snapshot(fresh_pki.path) == before
        assert issued == []
    else:
        assert len(issued) == 1
        assert reopened.credentials("single-center-annex").party == "single-center-annex"


def test_unreadable_journal_is_named(fresh_pki: ThrowawayPKI) -> None:
    """A journal that is not the CA's: pki-file-corrupt naming it, nothing renamed."""
    (fresh_pki.path / _files.JOURNAL_FILE).write_text("{not json")
    with pytest.raises(PKIFileCorrupt, match=r"\.journal\.json"):
        fresh_pki.authority.index()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 000, as a careless service manager might."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """The mode of every file and directory under ``root`` (the root included)."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in paths}


@pytest.mark.usefixtures("open_umask")
def test_modes_are_explicit_whatever_the_umask(tmp_path: Path, clock: FrozenClock) -> None:
    """Under umask 000: private keys 0600, public files 0644, directories 0755."""
    ca = CertificateAuthority(tmp_path / "certs", clock)
    ca.init_ca()
    ca.issue("single-center")
    ca.issue("improvement", KeyType.RSA)
    ca.rotate("single-center")
    ca.revoke("improvement")
    CrlNumberFile.beside(ca.path).remember("issuer", 7)
    found = modes(ca.path)
    assert found.pop(".") == 0o755
    for name, mode in found.items():
        path = ca.path / name
        if path.is_dir():
            expected = 0o755
        elif path.suffix == ".key":
            expected = 0o600
        else:
            expected = 0o644
        assert mode == expected, (name, oct(mode))
    assert {p.suffix for p in ca.path.rglob("*") if p.is_file()} >= {".key", ".pem", ".json"}


@pytest.mark.usefixtures("open_umask")
def test_key_kept_elsewhere_is_private_in_a_new_directory(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """A CA key written outside the certs directory is 0600, its new directory 0755."""
    key_path = tmp_path / "vault" / "nested" / "root.key"
    CertificateAuthority(tmp_path / "certs", clock, key_path=key_path).init_ca()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(key_path.parent.parent.stat().st_mode) == 0o755


def test_write_file_keeps_the_old_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single-file write that fails at the rename leaves the old content and no temp file."""
    path = tmp_path / "crl-numbers.json"
    path.write_text("old")
    crash_at(monkeypatch, 1)
    write: Callable[[], None] = lambda: _files.write_file(path, b"new", _files.PUBLIC)  # noqa: E731
    with pytest.raises(Crash):
        write()
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crl-numbers.json"]
