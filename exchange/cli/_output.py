"""Shared console output of the ``exchange`` CLI: errors as ``error <code>: <message>``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from exchange._validation import first_error
from exchange.config import Settings
from exchange.exceptions import ExchangeError

# Extra advice per error code, printed after the error unless the message already gives some.
_HINTS: dict[str, str] = {
    "malformed": "the file must be an envelope per envelope.xsd or the Envelope JSON model",
    "too-large": "raise EXCHANGE_MAX_ENVELOPE_BYTES if the envelope is legitimately this large",
    "signature-invalid": "the file was changed after signing, or was never signed",
    "unsupported-algorithm": "sign with `exchange sign`, which uses only the allowed algorithms",
    "certificate-unknown": "check that --certs-dir / EXCHANGE_CERTS_DIR is this exchange's CA",
    "certificate-expired": "the sender must sign with a current certificate",
    "certificate-revoked": "the sender must sign with a new certificate (`exchange certs rotate`)",
    "revocation-unknown": "an admin must publish a fresh CRL with `exchange certs crl`",
    "sender-mismatch": "sign with --as set to the envelope's sender",
    "unknown-party": "see `exchange certs list` for the parties and serials this CA knows",
}


def console(min_width: int = 0) -> Console:
    """A rich console on the current stdout (looked up per call, so test runners capture it).

    Long lines are not wrapped; when piped, tables get at least ``min_width`` columns.
    """
    out = Console(highlight=False, soft_wrap=True)
    if not out.file.isatty() and out.width < min_width:
        out.width = min_width
    return out


def load_settings() -> Settings:
    """The ``EXCHANGE_*`` settings, or exit 1 with ``config-error`` naming the bad one."""
    try:
        return Settings()
    except ValidationError as exc:
        where, message = first_error(exc, "")
        raise fail("config-error", f"bad EXCHANGE_{where.upper()}: {message}") from None


def certs_dir(path: Path | None) -> Path:
    """The certs directory: the option if given, else ``EXCHANGE_CERTS_DIR`` (Settings)."""
    return path if path is not None else load_settings().certs_dir


def max_envelope_bytes() -> int:
    """The envelope size limit from ``EXCHANGE_MAX_ENVELOPE_BYTES`` (Settings)."""
    return load_settings().max_envelope_bytes


def fail(code: str, message: str, hint: str | None = None) -> typer.Exit:
    """Print ``error <code>: <message>`` (and a hint) to stderr; return the exit to raise."""
    typer.echo(f"error {code}: {message}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    return typer.Exit(code=1)


def hint_for(error: ExchangeError) -> str | None:
    """The hint for an error's code, unless its message already names a command to run."""
    if "`" in error.message:
        return None
    return _HINTS.get(error.code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an ExchangeError (or a file error) into a one-line message and exit code 1."""
    try:
        yield
    except ExchangeError as exc:
        raise fail(exc.code, exc.message, hint_for(exc)) from None
    except OSError as exc:
        raise fail(
            "io-error", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        ) from None


def print_json(data: Any) -> None:
    """Print a JSON document on stdout, for scripts."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False))
