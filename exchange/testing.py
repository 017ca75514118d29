"""Helpers for tests and demos: a throwaway PKI and envelopes with sensible defaults.

Unit tests use these; integration tests still use the real broker and database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from exchange._clock import Clock, FrozenClock
from exchange._ids import new_message_id
from exchange.config import Settings
from exchange.envelope.model import Envelope, Kind, ServiceRef
from exchange.pki.authority import CertificateAuthority, KeyType
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore

COLLECTOR_ID = "collector"
"""The collector's identity in the test catalogs and throwaway PKIs."""

__all__ = ["COLLECTOR_ID", "FrozenClock", "ThrowawayPKI", "exchange_env", "make_envelope"]


@dataclass
class ThrowawayPKI:
    """A root CA and party certificates in a scratch directory."""

    path: Path
    authority: CertificateAuthority

    @classmethod
    def create(
        cls,
        path: Path,
        parties: tuple[str, ...] = ("single-center", "improvement"),
        clock: Clock | None = None,
        infrastructure: tuple[str, ...] = (COLLECTOR_ID,),
    ) -> ThrowawayPKI:
        """Create a CA in ``path``; issue an EC certificate for each party and the collector."""
        authority = CertificateAuthority(path, clock or FrozenClock())
        authority.init_ca()
        for party in (*parties, *infrastructure):
            authority.issue(party)
        return cls(path, authority)

    def credentials(self, party: str) -> Credentials:
        """The party's current signing credentials."""
        return self.authority.credentials(party)

    def issue(self, party: str, key_type: KeyType = KeyType.EC) -> Credentials:
        """Issue (or rotate to) a certificate for ``party`` and return its credentials."""
        if any(entry.party == party for entry in self.authority.index()):
            self.authority.rotate(party, key_type)
        else:
            self.authority.issue(party, key_type)
        return self.credentials(party)

    def trust(self) -> TrustStore:
        """A trust store over this PKI's root and CRL."""
        return TrustStore.from_dir(self.path)


def make_envelope(clock: Clock | None = None, **fields: Any) -> Envelope:
    """A valid request from ``single-center`` to ``improvement``; override any field."""
    now = (clock or FrozenClock()).now()
    values: dict[str, Any] = {
        "message_id": new_message_id(),
        "kind": Kind.REQUEST,
        "service": ServiceRef(code="tree-felling-permit", version="1"),
        "sender": "single-center",
        "recipient": "improvement",
        "created_at": now,
        "expires_at": now + timedelta(days=1),
        "case_id": "KZN-2026-000001",
        "payload": {
            "applicant": {"name": "Ivan Petrov", "phone": "+7 843 000-00-00"},
            "address": "Kazan, Kremlyovskaya 1",
            "trees": [{"species": "birch", "count": "3"}, {"species": "oak", "count": "1"}],
        },
    }
    values.update(fields)
    return Envelope.model_validate(values)


def exchange_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child ``exchange`` process use ``settings``."""
    env = dict(os.environ)
    env.pop("EXCHANGE_STORE_DSN", None)
    env.update(
        EXCHANGE_CERTS_DIR=str(settings.certs_dir),
        EXCHANGE_SCHEMAS_DIR=str(settings.schemas_dir),
        EXCHANGE_CATALOG=str(settings.catalog),
        EXCHANGE_AMQP_URL=settings.amqp_url,
        EXCHANGE_BUS_PREFIX=settings.bus_prefix,
        EXCHANGE_STORE_DIR=str(settings.store_dir),
        **extra,
    )
    return env
