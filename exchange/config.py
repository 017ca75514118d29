"""Configuration from ``EXCHANGE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from exchange.transport.addresses import broker_addresses

_REPO = Path(__file__).resolve().parent.parent
_DATA = "data"  # exchange/data: the city's catalog and the schemas, shipped in the wheel


def packaged(name: str) -> Path:
    """A file or folder of the package's data (``catalog.toml``, ``schemas``), as a path.

    Found through ``importlib.resources``, so it is the installed copy wherever the package
    runs from, not whatever the working directory holds.

    Raises:
        FileNotFoundError: the package is installed without its data (or zipped).
    """
    resource = resources.files("exchange").joinpath(_DATA, name)
    if not isinstance(resource, Path) or not resource.exists():
        # Zipped or stripped installs: the catalog and schemas must be real files (libxml2
        # and the loader open them by path).
        raise FileNotFoundError(
            f"exchange's packaged {name} is missing ({resource}); reinstall kazan-exchange "
            "from a wheel or a checkout, or point EXCHANGE_CATALOG / EXCHANGE_SCHEMAS_DIR at "
            "your own"
        )
    return resource


ENVELOPE_XSD = packaged("schemas") / "envelope.xsd"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Every queue and exchange name starts with it: only characters safe in a name and a policy
# pattern, and short enough to leave room for the rest of the name (AMQP allows 255 bytes).
BUS_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,64}")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


class Settings(BaseSettings):
    """Settings shared by every command and node."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_")

    certs_dir: Path = _REPO / "certs"
    # The root CA's private key when it is kept outside certs_dir (offline media).
    ca_key: Path | None = None
    # The city's catalog and schemas ship with the package; a deployment may use its own.
    schemas_dir: Path = packaged("schemas")
    catalog: Path = packaged("catalog.toml")
    max_envelope_bytes: int = 1024 * 1024
    # Threads a node verifies deliveries in, off its event loop (EXCHANGE_VERIFY_WORKERS).
    verify_workers: int = Field(default=2, ge=1, le=64)
    # A delivery up to this size is verified on the event loop (0: every one in a worker): its
    # cost is bounded by the input limits, to little more than the hop to a thread and back.
    verify_inline_bytes: int = Field(default=16 * 1024, ge=0, le=1024 * 1024)
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_prefix: str = "kzn."
    store_dir: Path = _REPO / "var"
    store_dsn: str | None = None  # postgresql://... to share a party's state between processes
    # Message content (wire bytes) of finished messages; the audit chain is always kept whole.
    message_retention_days: int | None = Field(default=None, ge=0)  # None: keep content forever
    metadata_only: bool = False  # keep no content once a message is finished
    # False when a node runs as its own least-privilege broker user (`exchange topology
    # users`): then the admin declares the topology and the node only checks it exists.
    declare_topology: bool = True
    log_level: str = "INFO"  # of the JSON logs long-running commands write to stderr
    # A handler's retry budget: seconds before each retry of a failed run ("1,10,60": four
    # runs, then processing-failed). Waiting for another department or the broker is not
    # a failure and uses none of it.
    handler_retry_delays: Annotated[tuple[float, ...], NoDecode] = (1.0, 10.0, 60.0)
    # How often a parked request is looked at again (its answer may reach another process).
    wait_recheck: float = Field(default=60.0, gt=0)
    # Seconds a worker's claim of a request lasts unless renewed (renewed every third of
    # it while the handler runs); a dead process's requests wait this long for a takeover.
    # The same term for the lease of the one process of a party that ships its audit chain.
    claim_lease: float = 30.0
    # HTTP port of /metrics, /health and /ready of a long-running node or the collector
    # (`exchange node run`, `bridge http`, `audit collect`); unset or 0: none is served.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for Prometheus to scrape

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _port_off(cls, value: object) -> object:
        """An empty or 0 EXCHANGE_METRICS_PORT turns the probe server off, as unset does."""
        return None if value in ("", "0", 0) else value

    @field_validator("claim_lease")
    @classmethod
    def _lease_in_range(cls, value: float) -> float:
        """A lease shorter than a second would expire between renewals; over a day, a dead
        process's requests would wait that long."""
        if not 1.0 <= value <= 86_400.0:
            raise ValueError(
                f"{value}: give EXCHANGE_CLAIM_LEASE in seconds from 1 to 86400, e.g. 30"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: object) -> object:
        """EXCHANGE_LOG_LEVEL in any case (``debug``, ``Info``); stored upper case."""
        if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
            return value.strip().upper()
        raise ValueError(f"allowed: {', '.join(LOG_LEVELS)} (in any case)")

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        """AMQP URLs (several: a cluster's nodes, comma-separated), so a typo fails here."""
        try:
            broker_addresses(value)
        except ValueError:
            raise ValueError(
                "allowed: amqp://user:password@host:port/vhost or amqps://... "
                "(e.g. amqp://guest:guest@127.0.0.1:5672/); a cluster's nodes separated by "
                "commas"
            ) from None
        return value

    @field_validator("bus_prefix")
    @classmethod
    def _bus_prefix(cls, value: str) -> str:
        """Characters that are safe in queue names and policy patterns, at most 64 of them."""
        if BUS_PREFIX.fullmatch(value) is None:
            raise ValueError("allowed: up to 64 of the characters A-Z a-z 0-9 . _ - (e.g. kzn.)")
        return value

    @field_validator("message_retention_days", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """An empty EXCHANGE_MESSAGE_RETENTION_DAYS means keep forever, as unset does."""
        return None if value == "" else value

    @field_validator("handler_retry_delays", mode="before")
    @classmethod
    def _delays_from_text(cls, value: object) -> object:
        """EXCHANGE_HANDLER_RETRY_DELAYS is comma-separated seconds; empty means no retry."""
        if isinstance(value, str):
            try:
                return tuple(float(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError(
                    f"{value!r}: give seconds separated by commas, e.g. 1,10,60"
                ) from None
        return value

    @field_validator("handler_retry_delays")
    @classmethod
    def _delays_not_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays are seconds, none negative, e.g. 1,10,60")
        return value


def describe_settings_error(exc: ValidationError, env_prefix: str = "EXCHANGE_") -> str:
    """Every bad setting of ``exc`` as ``VARIABLE='value': what is allowed``, one per line.

    Passwords in URLs are masked: the message goes to terminals and logs.
    """
    lines = []
    for error in exc.errors():
        name = env_prefix + "_".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = _CREDENTIALS.sub("***@", str(error.get("input", "")))
        lines.append(f"bad {name}={shown!r}: {message}")
    return "\n".join(lines)
