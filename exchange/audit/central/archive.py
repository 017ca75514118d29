"""The envelope archive's gate: which wire bytes of a verified batch the collector keeps.

A batch's signature says its party sent the bytes, not that they are what its records name.
So the collector keeps an envelope only if its SHA-256 is the digest it is filed under and a
record of the same batch (verified, chained) carries that digest, and only for services the
catalog archives in full. Bytes that fail either check are refused with a finding; the
batch's records are stored all the same (they passed their own checks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from exchange.audit.batch import Batch
from exchange.audit.central.base import Finding
from exchange.catalog.model import ArchiveMode
from exchange.exceptions import ArchiveMismatch, ArchiveUnclaimed
from exchange.signing.base import digest

ArchivePolicy = Callable[[str | None], ArchiveMode]
"""The archive mode of a service code (``CatalogData.archive_mode``)."""


def archive_all(_: str | None) -> ArchiveMode:
    """The default policy without a catalog: every service archived in full."""
    return ArchiveMode.FULL


def archivable(
    batch: Batch, policy: ArchivePolicy, at: datetime
) -> tuple[dict[str, bytes], list[Finding]]:
    """The envelopes of a verified batch to keep, and findings about the bytes refused.

    Bytes of a digest-only service are dropped without a finding: the party's catalog may
    simply be older than the collector's.
    """
    services: dict[str, str | None] = {}
    seqs: dict[str, int] = {}
    for record in batch.records:
        if record.event.digest is not None:
            services.setdefault(record.event.digest, record.event.service)
            seqs.setdefault(record.event.digest, record.seq)
    kept: dict[str, bytes] = {}
    findings: list[Finding] = []
    for key, wire in sorted(batch.envelopes.items()):
        if key not in services:
            findings.append(
                Finding(
                    batch.party,
                    0,
                    ArchiveUnclaimed.code,
                    f"envelope bytes filed under {key[:16]}... that no record of the batch "
                    "names: not archived",
                    at,
                )
            )
        elif digest(wire) != key:
            findings.append(
                Finding(
                    batch.party,
                    seqs[key],
                    ArchiveMismatch.code,
                    f"envelope bytes filed under {key[:16]}... hash to {digest(wire)[:16]}...: "
                    "not archived",
                    at,
                )
            )
        elif policy(services[key]) is ArchiveMode.FULL:
            kept[key] = wire
    return kept, findings


def checked(key: str, wire: bytes) -> bytes:
    """Archived bytes read back, as long as they still hash to their digest.

    Raises:
        ArchiveMismatch (archive-mismatch): the stored bytes were changed.
    """
    if digest(wire) != key:
        raise ArchiveMismatch(
            f"the archived envelope {key} no longer hashes to its digest: the archive was "
            "changed; take the envelope from its parties' stores or an evidence bundle",
            digest=key,
        )
    return wire
