"""How the PKI writes files: explicit modes, fsync, and sets of files changed all-or-nothing.

A CA operation changes several files (index, certificates, keys, CRL). ``commit`` writes each
new file under a temporary name in its own directory, fsyncs it, then writes a journal that
lists the renames still to do (the commit point), performs them and removes the journal.
A crash before the journal exists changes nothing; a crash after it is finished by
``roll_forward``, which every CA operation runs first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography import x509

from exchange.exceptions import PKIFileCorrupt

PRIVATE = 0o600
PUBLIC = 0o644
DIRECTORY = 0o755
JOURNAL_FILE = ".journal.json"
LOCK_FILE = ".lock"
_TEMP_SUFFIX = ".tmp"
_COMMIT_TAG = "commit-"


def read_certificate(path: Path, remedy: str) -> x509.Certificate:
    """Load a PEM certificate; ``remedy`` says what to do when it is corrupt.

    Raises:
        FileNotFoundError: no such file (the caller knows what its absence means).
        PKIFileCorrupt (pki-file-corrupt): the file is not a PEM certificate.
    """
    data = path.read_bytes()
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PKIFileCorrupt(
            f"{path} is not a readable PEM certificate (corrupt?); {remedy}", path=str(path)
        ) from None


def make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0755, whatever the umask."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
        os.chmod(directory, DIRECTORY)


def write_file(path: Path, data: bytes, mode: int, *, tag: str = "") -> None:
    """Replace one file atomically (temporary name, fsync, rename) with an explicit mode."""
    make_dirs(path.parent)
    temp = _write_temp(path, data, mode, tag)
    try:
        _move(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def commit(root: Path, changes: Sequence[tuple[Path, bytes, int]]) -> None:
    """Write every ``(path, data, mode)`` or none of them; renames run in the given order.

    Raises:
        PKIFileCorrupt (pki-file-corrupt): an earlier interrupted commit left a bad journal.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in changes:
            make_dirs(path.parent)
            staged.append((_write_temp(path, data, mode, _COMMIT_TAG), path))
        moves = [
            {"from": _relative(root, temp), "to": _relative(root, path)} for temp, path in staged
        ]
        journal = json.dumps(moves, indent=1).encode()
        write_file(root / JOURNAL_FILE, journal, PUBLIC, tag=_COMMIT_TAG)
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    roll_forward(root)


def roll_forward(root: Path) -> None:
    """Finish a commit that a crash interrupted after its journal was written.

    Raises:
        PKIFileCorrupt (pki-file-corrupt): the journal is unreadable.
    """
    journal = root / JOURNAL_FILE
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return
    try:
        moves = [(root / move["from"], root / move["to"]) for move in json.loads(raw)]
    except (ValueError, TypeError, KeyError):
        raise PKIFileCorrupt(
            f"{journal} (an interrupted CA operation's journal) is unreadable; compare "
            "index.json with crl.pem and parties/, repair what differs, then remove the journal",
            path=str(journal),
        ) from None
    for source, target in moves:
        if source.exists():
            _move(source, target)
    for directory in {target.parent for _, target in moves}:
        _fsync_dir(directory)
    journal.unlink()
    _fsync_dir(root)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the CA directory's lock (one operation at a time), after finishing any journal."""
    make_dirs(root)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, PUBLIC)
    try:
        os.fchmod(fd, PUBLIC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        roll_forward(root)
        _remove_strays(root)
        yield
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, mode: int, tag: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{tag}", suffix=_TEMP_SUFFIX, dir=path.parent)
    try:
        # fchmod, not the umask-filtered creation mode: the mode is explicit whatever the umask.
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


def _move(source: Path, target: Path) -> None:
    # One place for the rename, so tests can simulate a crash between two of them.
    os.replace(source, target)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _relative(root: Path, path: Path) -> str:
    # A CA key kept outside the certs directory is journalled by its absolute path.
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path.absolute())


def _remove_strays(root: Path) -> None:
    # Temporary files of a commit that crashed before its journal was written: never renamed,
    # never referenced. Only called under the lock, so no commit is writing them now.
    for directory in (root, *root.glob("parties/*")):
        for stray in directory.glob(f".*.{_COMMIT_TAG}*{_TEMP_SUFFIX}"):
            stray.unlink(missing_ok=True)
