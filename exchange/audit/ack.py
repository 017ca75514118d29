"""Head acknowledgments: the collector's signed word that it holds a party's chain up to a head.

After each accepted batch the collector chains a ``head-acknowledged`` record into its own
chain in the central log and sends the party a JWS (``typ`` kzn-audit-ack+jws) of
``{party, seq, hash, at, collector_seq}``. The party keeps the newest one in its store, so a
tail cut from either side shows: the central log ends before an acknowledgment the
collector chained, or the party's chain ends before one it holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from exchange.codec.json import loads_strict
from exchange.exceptions import AckInvalid, ExchangeError, Malformed
from exchange.ledger.chain import canonical_time
from exchange.pki.credentials import Credentials
from exchange.pki.trust import TrustStore
from exchange.signing.jws.document import verify_document
from exchange.signing.jws.profile import AUDIT_ACK_TYPE, CONTENT_TYPES
from exchange.signing.jws.signer import sign_document

ACK_CONTENT_TYPE = CONTENT_TYPES[AUDIT_ACK_TYPE]
MAX_ACK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class HeadAck:
    """The collector holds ``party``'s chain up to ``seq`` with ``hash`` (as of ``at``)."""

    party: str
    seq: int
    hash: str
    at: datetime
    collector_seq: int  # the record of its own chain that holds this acknowledgment

    def payload(self) -> bytes:
        """Canonical JSON of the acknowledgment: what the collector signs."""
        doc = {
            "at": canonical_time(self.at),
            "collector_seq": self.collector_seq,
            "hash": self.hash,
            "party": self.party,
            "seq": self.seq,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def seal_ack(ack: HeadAck, credentials: Credentials) -> bytes:
    """The acknowledgment signed by the collector."""
    return sign_document(ack.payload(), credentials, AUDIT_ACK_TYPE, ACK_CONTENT_TYPE)


def open_ack(raw: bytes, trust: TrustStore, collector: str, party: str) -> HeadAck:
    """Verify an acknowledgment for ``party`` signed by the catalog's ``collector``.

    Raises:
        AckInvalid (ack-invalid): naming the reason; not a signed acknowledgment, not
            trusted at its time, not signed by the collector, or for another party.
    """
    try:
        document = verify_document(raw, trust, AUDIT_ACK_TYPE, _at, max_size=MAX_ACK_BYTES)
        ack = _read(document.payload)
    except ExchangeError as exc:
        raise AckInvalid(f"not a good acknowledgment: {exc}", party=party) from None
    if document.signer.party != collector:
        raise AckInvalid(
            f"an acknowledgment signed by {document.signer.party}, not the collector",
            party=party,
        )
    if ack.party != party:
        raise AckInvalid(f"an acknowledgment for {ack.party}, not {party}", party=party)
    return ack


def _at(payload: bytes) -> datetime:
    return _read(payload).at


def _read(payload: bytes) -> HeadAck:
    doc = loads_strict(payload)
    try:
        at = datetime.fromisoformat(doc["at"])
        if at.tzinfo is None:
            raise ValueError("at needs a time zone")
        return HeadAck(
            party=str(doc["party"]),
            seq=int(doc["seq"]),
            hash=str(doc["hash"]),
            at=at,
            collector_seq=int(doc["collector_seq"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Malformed(f"not a head acknowledgment: {exc!r}") from None
