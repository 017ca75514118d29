"""``exchange sign`` and ``exchange verify``: seal an envelope file, or check a signed one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from exchange._clock import SYSTEM_CLOCK
from exchange._hazmat.xml import parse
from exchange._logging import configure_logging
from exchange.catalog import read_catalog_data
from exchange.cli._output import (
    CertsDirOption,
    certs_dir,
    console,
    fail,
    hint_for,
    load_settings,
    max_envelope_bytes,
    print_json,
    user_errors,
)
from exchange.codec.json import decode_json, loads_strict
from exchange.codec.xml import decode_xml
from exchange.envelope.model import Envelope
from exchange.exceptions import ExchangeError, Expired, Malformed, TooLarge
from exchange.pki.authority import CertificateAuthority
from exchange.pki.trust import CrlNumberFile, TrustStore
from exchange.signing import VerifiedEnvelope, WireFormat, seal, sniff_format, unseal

_DSIG_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
_ALREADY_SIGNED = "the file is already signed; `exchange sign` takes an unsigned envelope"

InputFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The envelope file.")
]


def read_unsigned(raw: bytes, max_size: int) -> tuple[Envelope, WireFormat]:
    """Decode an unsigned envelope file, XML or JSON as its content says.

    Raises:
        TooLarge (too-large): more than ``max_size`` bytes.
        Malformed (malformed): not an unsigned envelope.
    """
    if len(raw) > max_size:
        raise TooLarge(f"{len(raw)} bytes is over the {max_size}-byte limit", size=len(raw))
    wire_format = sniff_format(raw)
    if wire_format is WireFormat.XML:
        root = parse(raw, max_size=max_size)
        if root.find(_DSIG_SIGNATURE) is not None:
            raise Malformed(_ALREADY_SIGNED)
        return decode_xml(root), wire_format
    document = loads_strict(raw)
    if isinstance(document, dict) and {"protected", "signature"} <= document.keys():
        raise Malformed(_ALREADY_SIGNED)
    return decode_json(raw), wire_format


def sign(
    file: InputFile,
    party: Annotated[str, typer.Option("--as", help="The party signing (the sender).")],
    wire_format: Annotated[
        WireFormat | None,
        typer.Option("--format", help="Wire format of the output.", show_default="that of FILE"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", dir_okay=False, help="Write here instead of stdout."),
    ] = None,
    certs: CertsDirOption = None,
) -> None:
    """Sign an unsigned envelope (XML or JSON) with a party's current certificate."""
    authority = CertificateAuthority(certs_dir(certs), SYSTEM_CLOCK)
    limit = max_envelope_bytes()
    with user_errors():
        envelope, source_format = read_unsigned(file.read_bytes(), limit)
        signed = seal(envelope, authority.credentials(party), wire_format or source_format)
        if out is None:
            typer.echo(signed, nl=False)
        else:
            out.write_bytes(signed)
    if out is not None:
        typer.echo(f"signed {envelope.message_id} as {party}: {out}", err=True)


def _fields(verified: VerifiedEnvelope) -> dict[str, Any]:
    envelope = verified.envelope
    return {
        "format": verified.format.value,
        "sender": envelope.sender,
        "recipient": envelope.recipient,
        "kind": envelope.kind.value,
        "service": {"code": envelope.service.code, "version": envelope.service.version},
        "message_id": envelope.message_id,
        "case_id": envelope.case_id,
        "correlation_id": envelope.correlation_id,
        "signer": verified.signer.party,
        "signer_serial": f"{verified.signer.serial:x}",
        "digest": verified.digest,
        "expires_at": verified.envelope.expires_at.isoformat(),
    }


def _check_expiry(envelope: Envelope) -> None:
    """Raises Expired (expired) when the envelope's ``expires_at`` has passed."""
    if envelope.expires_at <= SYSTEM_CLOCK.now():
        raise Expired(
            f"the envelope expired at {envelope.expires_at.isoformat()}; its signature was "
            "checked (use --signature-only to check nothing else)"
        )


def verify(
    file: InputFile,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result (or the error) as JSON on stdout.")
    ] = False,
    certs: CertsDirOption = None,
    signature_only: Annotated[
        bool,
        typer.Option(
            "--signature-only",
            help="Check the signature and its certificate only, not the envelope's expiry.",
        ),
    ] = False,
) -> None:
    """Verify a signed envelope against the trust store (root CA and CRL); exit 1 if bad.

    An envelope past its ``expires_at`` is reported as ``expired`` (a node would refuse
    it), unless ``--signature-only`` asks about the signature alone.
    """
    path = certs_dir(certs)
    limit = max_envelope_bytes()
    # A verification bug's stack trace goes to stderr only when asked for (EXCHANGE_LOG_LEVEL);
    # by default the user sees the one named error.
    configure_logging(os.environ.get("EXCHANGE_LOG_LEVEL", "CRITICAL"))
    try:
        with user_errors():
            raw = file.read_bytes()
        verified = unseal(
            raw,
            TrustStore.from_dir(path, CrlNumberFile.beside(path)),
            clock=SYSTEM_CLOCK,
            max_size=limit,
        )
        # The collector's and the console's certificates are good, but they sign no envelopes.
        read_catalog_data(load_settings().catalog).check_party(verified.signer.party)
        if not signature_only:
            _check_expiry(verified.envelope)
    except ExchangeError as exc:
        if as_json:
            print_json({"ok": False, "code": exc.code, "message": exc.message})
            raise typer.Exit(code=1) from None
        raise fail(exc.code, exc.message, hint_for(exc)) from None
    fields = _fields(verified)
    if as_json:
        print_json({"ok": True, **fields})
        return
    service = fields["service"]
    out = console()
    what = "signature and certificate" if signature_only else "signature, certificate and expiry"
    out.print(f"[green]ok[/green]: {what} valid ({verified.format.value})")
    rows = {
        **{key: fields[key] for key in ("sender", "recipient", "kind")},
        "service": f"{service['code']} v{service['version']}",
        **{key: fields[key] for key in ("message_id", "case_id", "correlation_id")},
        "signer serial": fields["signer_serial"],
    }
    for key, value in rows.items():
        out.print(f"{key:<15} {escape(str(value if value is not None else '-'))}")
