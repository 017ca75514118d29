"""A signed admin command: "replay request M of party P", as the console sends it.

A JWS (``typ`` kzn-admin-command+jws) in the profile of the audit batches and head
acknowledgments, signed with the console's key; its payload is canonical JSON::

    {"action": "replay", "actor": "alice", "command_id": "...", "expires_at": "...",
     "issued_at": "...", "message_id": "...", "party": "improvement", "version": 1}

Unlike an audit document, a command is judged when it arrives, not when it says it was
signed: the console's certificate must be good (trusted, unexpired, unrevoked) at the
receiving node's time, and the command must be inside its short validity window, so an old
command, or one signed with a key since revoked, cannot be played back later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from exchange.catalog.model import CatalogData, Role
from exchange.codec.json import loads_strict
from exchange.exceptions import CommandForbidden, Expired, Malformed, WrongRecipient
from exchange.ledger.chain import canonical_time
from exchange.pki.credentials import Credentials
from exchange.pki.trust import Signer, TrustStore
from exchange.signing.jws.document import verify_document
from exchange.signing.jws.profile import ADMIN_COMMAND_TYPE, CONTENT_TYPES
from exchange.signing.jws.signer import sign_document

COMMAND_VERSION = 1
COMMAND_CONTENT_TYPE = CONTENT_TYPES[ADMIN_COMMAND_TYPE]
MAX_COMMAND_BYTES = 64 * 1024
CLOCK_SKEW = timedelta(minutes=2)
"""How far ahead of a node's clock a command's ``issued_at`` may be (clocks differ)."""
MAX_LIFETIME = timedelta(days=1)
"""The longest a command may stay valid: a console signs for now, not for later."""


class Action(StrEnum):
    """What an admin command asks a party's node to do."""

    REPLAY = "replay"  # give a request that never got its final answer to the handler again


@dataclass(frozen=True, slots=True)
class AdminCommand:
    """One admin action on one message of one party, valid from ``issued_at`` to ``expires_at``."""

    command_id: str
    action: Action
    party: str
    message_id: str
    actor: str  # the person at the console who asked for it
    issued_at: datetime
    expires_at: datetime

    def payload(self) -> bytes:
        """Canonical JSON of the command: what the console signs."""
        doc = {
            "action": self.action.value,
            "actor": self.actor,
            "command_id": self.command_id,
            "expires_at": canonical_time(self.expires_at),
            "issued_at": canonical_time(self.issued_at),
            "message_id": self.message_id,
            "party": self.party,
            "version": COMMAND_VERSION,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class VerifiedCommand:
    """A command whose signature, console certificate, validity and address passed."""

    command: AdminCommand
    signer: Signer
    digest: str  # SHA-256 of the JWS as received


def seal_command(command: AdminCommand, credentials: Credentials) -> bytes:
    """The command signed with the console's key."""
    return sign_document(command.payload(), credentials, ADMIN_COMMAND_TYPE, COMMAND_CONTENT_TYPE)


def open_command(
    raw: bytes, trust: TrustStore, catalog: CatalogData, party: str, now: datetime
) -> VerifiedCommand:
    """Verify an admin command for ``party`` at time ``now`` (the receiving node's clock).

    Raises:
        TooLarge (too-large), Malformed (malformed): not a command.
        WrongDocumentType (wrong-document-type): another signed document (an envelope ...).
        SignatureInvalid (signature-invalid), UnsupportedAlgorithm (unsupported-algorithm):
            tampered or off-profile.
        Expired (expired): issued in the future, expired, or valid for too long.
        TrustError subclasses (certificate-expired, certificate-revoked, ...): the signer's
            certificate is not good now.
        CommandForbidden (command-forbidden): signed by anyone but the catalog's console.
        WrongRecipient (wrong-recipient): a command for another party.
    """

    def judged_now(payload: bytes) -> datetime:
        command = _read(payload)
        if command.issued_at > now + CLOCK_SKEW:
            raise Expired(f"admin command {command.command_id} is issued in the future")
        if command.expires_at <= now:
            raise Expired(f"admin command {command.command_id} expired at {command.expires_at}")
        if command.expires_at - command.issued_at > MAX_LIFETIME:
            raise Expired(f"admin command {command.command_id} is valid for too long")
        return now  # the certificate is judged now, whatever the command says

    document = verify_document(
        raw, trust, ADMIN_COMMAND_TYPE, judged_now, max_size=MAX_COMMAND_BYTES
    )
    command = _read(document.payload)
    signer = next((p for p in catalog.parties if p.id == document.signer.party), None)
    if signer is None or signer.role is not Role.CONSOLE:
        raise CommandForbidden(
            f"an admin command signed by {document.signer.party}, not the console: only the "
            "catalog's console may send admin commands",
            serial=document.signer.serial,
            party=document.signer.party,
        )
    if command.party != party:
        raise WrongRecipient(
            f"admin command {command.command_id} is for {command.party}, not {party}",
            party=command.party,
        )
    return VerifiedCommand(command, document.signer, document.digest)


def _read(payload: bytes) -> AdminCommand:
    doc = loads_strict(payload)
    try:
        if doc["version"] != COMMAND_VERSION:
            raise ValueError(f"version {doc['version']!r} is not supported")
        times = [datetime.fromisoformat(doc[key]) for key in ("issued_at", "expires_at")]
        if any(at.tzinfo is None for at in times):
            raise ValueError("times need a time zone")
        fields = [doc[key] for key in ("command_id", "party", "message_id", "actor")]
        if not all(isinstance(value, str) and value for value in fields):
            raise ValueError("command_id, party, message_id and actor must be text")
        return AdminCommand(
            command_id=fields[0],
            action=Action(doc["action"]),
            party=fields[1],
            message_id=fields[2],
            actor=fields[3],
            issued_at=times[0],
            expires_at=times[1],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Malformed(f"not an admin command: {exc!r}") from None
