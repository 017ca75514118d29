"""Write docs/configuration.md from the settings classes (``make docs``).

Every field of ``exchange.config.Settings`` (``EXCHANGE_*``) and
``exchange.audit.config.AuditSettings`` (``EXCHANGE_AUDIT_*``) and
``exchange.console.config.ConsoleSettings`` (``EXCHANGE_CONSOLE_*``) gets a row: its variable,
its default and what it means. A field without a description here stops the script, so a
new setting cannot go undocumented; tests/test_docs.py fails when the file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from exchange.audit.config import AuditSettings
from exchange.config import LOG_LEVELS, Settings
from exchange.console.config import ConsoleSettings
from exchange.transport.addresses import AMQP_SCHEMES

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "configuration.md"

MEANING: dict[str, str] = {
    "EXCHANGE_CERTS_DIR": "root CA, CRL and the parties' certificates and keys",
    "EXCHANGE_CA_KEY": "the root CA's private key where it is mounted when kept offline "
    "(unset: `<certs dir>/root.key`)",
    "EXCHANGE_SCHEMAS_DIR": "envelope and service schemas",
    "EXCHANGE_CATALOG": "the service catalog (TOML)",
    "EXCHANGE_MAX_ENVELOPE_BYTES": "larger envelopes are refused before parsing",
    "EXCHANGE_AMQP_URL": f"the broker; scheme {' or '.join(AMQP_SCHEMES)}, "
    "`amqp://user:password@host:port/vhost`; a cluster's nodes separated by commas (a node "
    "connects to the first that answers and fails over to the next)",
    "EXCHANGE_BUS_PREFIX": "prefix of every exchange and queue name: up to 64 of "
    "`A-Z a-z 0-9 . _ -`",
    "EXCHANGE_STORE_DIR": "SQLite store of each party (`<party>.db`)",
    "EXCHANGE_STORE_DSN": "PostgreSQL DSN: a party run as several processes shares it",
    "EXCHANGE_MESSAGE_RETENTION_DAYS": "days to keep finished messages' content (unset or "
    "empty: forever); the audit chain is always kept whole",
    "EXCHANGE_METADATA_ONLY": "`true`: keep no content once a message is finished",
    "EXCHANGE_DECLARE_TOPOLOGY": "`false` for a node running as its own least-privilege "
    "broker user (the admin declares the topology)",
    "EXCHANGE_LOG_LEVEL": f"level of the JSON logs on stderr, any case: {', '.join(LOG_LEVELS)}",
    "EXCHANGE_HANDLER_RETRY_DELAYS": "seconds between runs of a failing handler, "
    "comma-separated; past the last, `processing-failed` (waiting uses none)",
    "EXCHANGE_WAIT_RECHECK": "seconds between looks at a parked request (> 0)",
    "EXCHANGE_CLAIM_LEASE": "seconds a process holds a claimed request while its handler "
    "runs (renewed meanwhile), and the audit-shipping lease one process of a party holds; "
    "a dead process's claims and lease are taken over after it (1 to 86400)",
    "EXCHANGE_VERIFY_WORKERS": "threads (1 to 64) a node verifies deliveries in, off its "
    "event loop",
    "EXCHANGE_VERIFY_INLINE_BYTES": "deliveries up to this size (bytes) are verified on the "
    "event loop, larger ones in the threads; 0 sends every one to a thread",
    "EXCHANGE_METRICS_PORT": "HTTP port of `/metrics` (Prometheus), `/health` and `/ready` of "
    "`exchange node run`, `bridge http` and `audit collect` (unset or 0: not served); see "
    "docs/operations.md",
    "EXCHANGE_METRICS_HOST": "address that server listens on (`0.0.0.0` in a container)",
    "EXCHANGE_AUDIT_CHECKPOINT_EVERY": "a signed checkpoint after every N records (>= 1) "
    "and on shutdown",
    "EXCHANGE_AUDIT_BATCH_SIZE": "audit records per message to the collector (>= 1)",
    "EXCHANGE_AUDIT_SHIP_INTERVAL": "seconds between looks at the store when there is "
    "nothing new to ship (> 0)",
    "EXCHANGE_AUDIT_PATH": "the collector's central audit log (SQLite)",
    "EXCHANGE_AUDIT_DSN": "the central audit log in PostgreSQL instead",
    "EXCHANGE_AUDIT_SCHEMA_NAME": "the central log's PostgreSQL schema (a lowercase identifier)",
    "EXCHANGE_CONSOLE_USERS": "the console's users file (scrypt hashes; `exchange console user "
    "add`); no default user",
    "EXCHANGE_CONSOLE_HOST": "address `exchange console serve` listens on",
    "EXCHANGE_CONSOLE_PORT": "port `exchange console serve` listens on",
    "EXCHANGE_CONSOLE_SECURE_COOKIES": "`false` only for a console reached without TLS on "
    "localhost (cookies are otherwise HTTPS-only)",
    "EXCHANGE_CONSOLE_SESSION_HOURS": "hours a login lasts (> 0, at most 24)",
    "EXCHANGE_CONSOLE_LOGIN_ATTEMPTS": "failed logins allowed per user and per address ...",
    "EXCHANGE_CONSOLE_LOGIN_WINDOW_SECONDS": "... within this many seconds",
    "EXCHANGE_CONSOLE_PAGE_SIZE": "search results per page (1 to 500)",
}

# Read by one command each, outside the settings classes.
OTHERS = [
    ("EXCHANGE_BRIDGE_TOKEN", "unset", "`exchange bridge http --token`: the bearer token"),
]


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Path):
        try:
            relative = value.relative_to(REPO)
        except ValueError:
            return f"`{value}`"
        if relative.parts[:2] == ("exchange", "data"):
            return f"the package's `{relative}`"
        try:
            return f"`<checkout>/{relative}`"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, tuple):
        return f"`{','.join(f'{item:g}' for item in value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def rows(settings: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, meaning) per field of ``settings``."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    found = []
    for name, field in settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        if variable not in MEANING:
            raise SystemExit(f"{variable}: add what it means to MEANING in {__file__}")
        found.append((variable, _default(field.default), MEANING[variable]))
    return found


def render() -> str:
    """The whole of docs/configuration.md."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by scripts/gen_config_docs.py (`make docs`) from exchange/config.py and",
        "exchange/audit/config.py and exchange/console/config.py; do not edit by hand. -->",
        "",
        "Every setting is an environment variable, read when a command starts. A bad value",
        "stops the command with `error config-error: bad VARIABLE='value': what is allowed`.",
        "Paths default to the checkout the package runs from.",
        "",
    ]
    sections: tuple[tuple[str, type[BaseSettings]], ...] = (
        ("Nodes and commands", Settings),
        ("Audit", AuditSettings),
        ("Support console", ConsoleSettings),
    )
    for title, settings in sections:
        lines += [f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{v}` | {d} | {m} |" for v, d, m in rows(settings)]
        lines.append("")
    lines += ["## Others", "", "| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v}` | {d} | {m} |" for v, d, m in OTHERS]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the file, or with ``--check`` exit 1 if it differs."""
    text = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
