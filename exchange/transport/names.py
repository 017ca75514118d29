"""Names of everything the exchange declares on the broker, under one per-deployment prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BusNames:
    """Exchange and queue names; tests give each run its own prefix so runs never collide."""

    prefix: str = "kzn."

    @property
    def bus(self) -> str:
        """Direct exchange every envelope is published to, routed by recipient party id."""
        return f"{self.prefix}bus"

    @property
    def dead_letter(self) -> str:
        """Direct exchange that takes what an inbox dead-letters, routed by party id."""
        return f"{self.prefix}dlx"

    @property
    def quarantine(self) -> str:
        """Queue for what cannot be attributed to a sender (unverifiable)."""
        return f"{self.prefix}quarantine"

    @property
    def audit(self) -> str:
        """Durable queue the audit collector consumes."""
        return f"{self.prefix}audit"

    @property
    def audit_quarantine(self) -> str:
        """Durable queue of audit batches the collector refused (unsigned, forged, mismatched)."""
        return f"{self.prefix}audit.quarantine"

    @property
    def audit_feed(self) -> str:
        """Fanout exchange of the batches the collector stored: the live feed of the log."""
        return f"{self.prefix}audit.feed"

    def audit_acks(self, party: str) -> str:
        """A party's queue of the collector's signed head acknowledgments."""
        return f"{self.prefix}party.{party}.audit-acks"

    def admin(self, party: str) -> str:
        """A party's queue of signed admin commands (from the console), which its node carries
        out under its own rules."""
        return f"{self.prefix}party.{party}.admin"

    def inbox(self, party: str) -> str:
        """A party's inbox queue."""
        return f"{self.prefix}party.{party}.inbox"

    def attachments(self, party: str) -> str:
        """A party's queue of attachment chunks sent to it (bound by its own name)."""
        return f"{self.prefix}party.{party}.attachments"

    def dead_letters(self, party: str) -> str:
        """A party's dead-letter queue (deliveries that failed before they were stored)."""
        return f"{self.prefix}party.{party}.dlq"
