"""Tell a broker that refuses us (login, vhost) from one that cannot be reached.

An unreachable broker may come back, so callers retry; a refused login or vhost stays
refused until an admin changes the broker or ``EXCHANGE_AMQP_URL``, so retrying only hides
the cause behind a timeout.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import aiormq.exceptions

from exchange.exceptions import BrokerRefused

ACCESS_REFUSED = "ACCESS_REFUSED"
NOT_ALLOWED = "NOT_ALLOWED"


def refusal(error: BaseException, url: str) -> BrokerRefused | None:
    """The ``BrokerRefused`` that ``error`` (from connecting to ``url``) means, or None."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"
    user = unquote(parts.username or "guest")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    if isinstance(
        error,
        aiormq.exceptions.AuthenticationError | (aiormq.exceptions.ProbableAuthenticationError),
    ):
        return BrokerRefused(
            f"RabbitMQ at {where} refused the login of user {user!r} ({ACCESS_REFUSED}): "
            "check the user name and password in EXCHANGE_AMQP_URL (the user `guest` may "
            "log in only from the broker's own host)",
            reason=ACCESS_REFUSED,
        )
    # aiormq reports the broker's Connection.Close in answer to Connection.Open (RabbitMQ's
    # NOT_ALLOWED: no such vhost, or no permission on it) only in this error's text.
    text = str(error)
    if isinstance(error, aiormq.exceptions.AMQPError) and "OpenOk" in text and "Close" in text:
        return BrokerRefused(
            f"RabbitMQ at {where} refused the virtual host {vhost!r} for user {user!r} "
            f"({NOT_ALLOWED}): it does not exist or the user has no permission on it; fix the "
            "vhost in EXCHANGE_AMQP_URL, or an admin runs `rabbitmqctl add_vhost` and "
            "`rabbitmqctl set_permissions`",
            reason=NOT_ALLOWED,
        )
    return None
