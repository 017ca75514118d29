"""Least-privilege broker users: each party reads only its own queues, writes only to the bus.

Applied with ``rabbitmqctl`` on the broker's host by an admin (``exchange topology users``);
nodes then run with ``EXCHANGE_DECLARE_TOPOLOGY=false``, since they may configure nothing.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from exchange.exceptions import BrokerUnavailable
from exchange.transport.names import BusNames

COLLECTOR = "collector"
CONSOLE = "console"


@dataclass(frozen=True)
class Grant:
    """One broker user and the three permission patterns RabbitMQ checks."""

    user: str
    configure: str
    write: str
    read: str


def broker_user(names: BusNames, party: str) -> str:
    """The broker user ``exchange topology users`` creates for a party (or the collector)."""
    return f"{names.prefix}{party}"


def url_user(url: str) -> str | None:
    """The user name an AMQP URL logs in as (None when it names none)."""
    return unquote(urlsplit(url).username or "") or None


def grants(names: BusNames, parties: list[str]) -> list[Grant]:
    """A user per party (its own queues; publish to the bus), the collector's and the console's.

    The console only publishes to the bus (signed admin commands to each party's admin
    queue). The collector reads the audit queue and publishes to the bus (refused batches to the
    audit quarantine, signed head acknowledgments to each party's acknowledgment queue) and
    to the audit feed (the batches it stored).
    """
    bus = f"^{re.escape(names.bus)}$"
    result = [
        Grant(
            user=broker_user(names, party),
            configure="^$",
            write=bus,
            read="^("
            + "|".join(
                re.escape(queue)
                for queue in (
                    names.inbox(party),
                    names.dead_letters(party),
                    names.audit_acks(party),
                    names.admin(party),
                    names.attachments(party),
                )
            )
            + ")$",
        )
        for party in parties
    ]
    result.append(
        Grant(
            user=broker_user(names, COLLECTOR),
            configure="^$",
            write=f"^({re.escape(names.bus)}|{re.escape(names.audit_feed)})$",
            read=f"^{re.escape(names.audit)}$",
        )
    )
    result.append(Grant(user=broker_user(names, CONSOLE), configure="^$", write=bus, read="^$"))
    return result


def new_password() -> str:
    """A random broker password (192 bits) that rabbitmqctl cannot mistake for an option.

    token_urlsafe() may start with '-', and rabbitmqctl then refuses the command.
    """
    return secrets.token_hex(24)


def apply_grants(grant_list: list[Grant], vhost: str) -> dict[str, str]:
    """Create (or re-key) each user and set its permissions; return user -> new password.

    Raises:
        BrokerUnavailable (broker-unavailable): rabbitmqctl is missing or failed.
    """
    passwords: dict[str, str] = {}
    for grant in grant_list:
        password = new_password()
        if _ctl("add_user", grant.user, password, check=False).returncode != 0:
            _ctl("change_password", grant.user, password)
        _ctl("set_permissions", "-p", vhost, grant.user, grant.configure, grant.write, grant.read)
        passwords[grant.user] = password
    return passwords


def delete_users(users: list[str]) -> None:
    """Remove broker users (missing ones are ignored)."""
    for user in users:
        _ctl("delete_user", user, check=False)


def url_for(base_url: str, user: str, password: str) -> str:
    """``base_url`` with another user's credentials."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def vhost_of(url: str) -> str:
    """The virtual host an AMQP URL names ("/" when none)."""
    path = urlsplit(url).path
    return "/" if path in ("", "/") else path[1:].replace("%2F", "/").replace("%2f", "/")


def _ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerUnavailable(
            f"cannot run rabbitmqctl ({exc}); run this on the broker's host as its admin"
        ) from None
    if check and done.returncode != 0:
        raise BrokerUnavailable(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[:300]}")
    return done
