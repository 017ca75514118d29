"""``exchange demo``: a citizen's request signed, verified and answered with a bound receipt.

Until the bus exists this is the signing round trip the bus will carry: it creates the demo
PKI if missing, then shows each step a department's node will take.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from exchange._clock import SYSTEM_CLOCK
from exchange._ids import new_message_id
from exchange.cli._output import certs_dir, console, user_errors
from exchange.envelope.model import Envelope, Kind, ServiceRef
from exchange.exceptions import ExchangeError
from exchange.pki.authority import CertificateAuthority
from exchange.pki.trust import ROOT_FILE, TrustStore
from exchange.signing import WireFormat, seal, unseal

DEMO_PARTIES = ("single-center", "land-property", "architecture", "improvement", "urban-permits")


def ensure_demo_pki(authority: CertificateAuthority) -> list[str]:
    """Create the root CA and a certificate per party where missing; refresh the CRL."""
    done: list[str] = []
    if not (authority.path / ROOT_FILE).exists():
        authority.init_ca()
        done.append("created the root CA")
    now = authority.clock.now()
    for party in DEMO_PARTIES:
        if not any(
            entry.party == party and entry.status(now) in ("valid", "expiring")
            for entry in authority.index()
        ):
            authority.issue(party)
            done.append(f"issued a certificate for {party}")
    authority.write_crl()
    return done


def demo(
    certs: Annotated[
        Path | None, typer.Option("--certs-dir", help="Trust store directory.")
    ] = None,
) -> None:
    """Sign a tree-felling request, verify it as the provider, answer with a signed receipt."""
    out = console()
    with user_errors():
        authority = CertificateAuthority(certs_dir(certs), SYSTEM_CLOCK)
        for line in ensure_demo_pki(authority):
            out.print(f"[dim]pki:[/dim] {line}")
        trust = TrustStore.from_dir(authority.path)
        now = SYSTEM_CLOCK.now()
        request = Envelope(
            message_id=new_message_id(),
            kind=Kind.REQUEST,
            service=ServiceRef(code="tree-felling-permit", version="1"),
            sender="single-center",
            recipient="improvement",
            created_at=now,
            expires_at=now + timedelta(days=14),
            case_id="KZN-2026-000042",
            payload={
                "applicant": {"name": "Gulnara Safina", "phone": "+7 843 555-01-02"},
                "address": "Kazan, ul. Pushkina 12",
                "trees": [{"species": "birch", "count": "2"}, {"species": "poplar", "count": "1"}],
                "reason": "emergency: trunk cracked after the storm",
            },
        )
        table = Table(title="One request, end to end", show_lines=False)
        for column in ("step", "party", "format", "bytes", "result"):
            table.add_column(column)
        wire = seal(request, authority.credentials("single-center"), WireFormat.XML)
        table.add_row("sign request", "single-center", "XML-DSig", str(len(wire)), "signed")
        verified = unseal(wire, trust)
        table.add_row(
            "verify request",
            "improvement",
            "XML-DSig",
            str(len(wire)),
            f"ok, signer {verified.signer.party}",
        )
        receipt = Envelope(
            message_id=new_message_id(),
            kind=Kind.RECEIPT,
            service=request.service,
            sender="improvement",
            recipient="single-center",
            created_at=SYSTEM_CLOCK.now(),
            expires_at=request.expires_at,
            correlation_id=request.message_id,
            case_id=request.case_id,
            request_digest=verified.digest,
        )
        receipt_wire = seal(receipt, authority.credentials("improvement"), WireFormat.JSON)
        table.add_row("sign receipt", "improvement", "JWS", str(len(receipt_wire)), "signed")
        bound = unseal(receipt_wire, trust).envelope
        binds = bound.request_digest == verified.digest
        table.add_row(
            "verify receipt",
            "single-center",
            "JWS",
            str(len(receipt_wire)),
            "ok, binds the request digest" if binds else "DIGEST MISMATCH",
        )
        forged = wire.replace(b"<s:count>2</s:count>", b"<s:count>20</s:count>")
        try:
            unseal(forged, trust)
            outcome = "ACCEPTED (bug)"
        except ExchangeError as exc:
            outcome = f"refused: {exc.code}"
        table.add_row("tampered copy", "improvement", "XML-DSig", str(len(forged)), outcome)
        out.print(table)
        out.print(f"case {request.case_id}: request {request.message_id}")
        out.print(f"request digest (sha256 of the wire bytes): {verified.digest}")
        if not binds or outcome.startswith("ACCEPTED"):
            raise typer.Exit(code=1)
