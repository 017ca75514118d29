"""``exchange certs``: the admins' commands for the root CA, party certificates and the CRL."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from exchange._clock import SYSTEM_CLOCK
from exchange.catalog import Catalog, read_catalog_data
from exchange.cli._output import (
    CertsDirOption,
    certs_dir,
    console,
    load_settings,
    print_json,
    user_errors,
)
from exchange.exceptions import (
    AmbiguousRevocation,
    CatalogError,
    CertificateUnknown,
    UnknownParty,
)
from exchange.pki.authority import (
    CertificateAuthority,
    IssuedCertificate,
    KeyType,
    RevocationReason,
)
from exchange.pki.trust import CRL_FILE, ROOT_FILE

app = typer.Typer(
    help="Manage the exchange's root CA, party certificates and revocation list.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_STATUS_STYLE = {"valid": "green", "expiring": "yellow", "expired": "red", "revoked": "red"}

Days = Annotated[int, typer.Option("--days", min=1, help="Validity in days.")]
Rsa = Annotated[bool, typer.Option("--rsa", help="RSA-3072 key instead of EC P-256.")]
Party = Annotated[str, typer.Argument(help="Party id, e.g. single-center.")]


@app.callback()
def certs(
    ctx: typer.Context,
    path: CertsDirOption = None,
) -> None:
    """Manage the exchange's root CA, party certificates and revocation list."""
    ctx.obj = certs_dir(path)


def _authority(ctx: typer.Context) -> CertificateAuthority:
    path = ctx.obj
    assert isinstance(path, Path)
    return CertificateAuthority(path, SYSTEM_CLOCK, key_path=load_settings().ca_key)


def _check_known(party: str) -> None:
    """Refuse a certificate for an identity the catalog does not list (unless --force)."""
    settings = load_settings()
    if not Catalog.load(settings.catalog, settings.schemas_dir).knows(party):
        raise UnknownParty(
            f"{party} is not in the catalog {settings.catalog}; add it to the catalog (or set "
            f"EXCHANGE_CATALOG to the right one), or run `exchange certs issue {party} --force` "
            "to issue a certificate anyway"
        )


def _date(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def _print_issued(verb: str, entry: IssuedCertificate, authority: CertificateAuthority) -> None:
    out = console()
    out.print(
        f"{verb} [bold]{escape(entry.party)}[/bold] certificate {entry.serial} "
        f"({entry.key_type}), valid until {_date(entry.not_after)}"
    )
    folder = authority.path / "parties" / entry.party
    out.print(f"  certificate {escape(str(folder / (entry.serial + '.pem')))}")
    out.print(f"  private key {escape(str(folder / (entry.serial + '.key')))} (mode 0600)")


@app.command("init-ca")
def init_ca(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Option("--name", help="Common name of the root certificate.")
    ] = "Kazan Inter-Agency Exchange Root CA",
    days: Days = 3650,
) -> None:
    """Create the root key, the self-signed root certificate and an empty CRL."""
    authority = _authority(ctx)
    with user_errors():
        authority.init_ca(name=name, days=days)
    out = console()
    out.print(f"created root CA [bold]{escape(name)}[/bold] in {escape(str(authority.path))}")
    out.print(f"  {ROOT_FILE}, {CRL_FILE}: publish to every node")
    out.print(
        f"  {escape(str(authority.key_path.name))} (mode 0600): keep offline (then set "
        "EXCHANGE_CA_KEY to where it is mounted), never commit it"
    )


@app.command()
def issue(
    ctx: typer.Context,
    party: Party,
    rsa: Rsa = False,
    days: Days = 365,
    force: Annotated[
        bool, typer.Option("--force", help="Issue even if the catalog does not list the party.")
    ] = False,
) -> None:
    """Issue the first signing certificate of a party (use `rotate` for later ones)."""
    authority = _authority(ctx)
    with user_errors():
        if not force:
            _check_known(party)
        entry = authority.issue(party, KeyType.RSA if rsa else KeyType.EC, days)
    _print_issued("issued", entry, authority)


@app.command()
def rotate(ctx: typer.Context, party: Party, rsa: Rsa = False, days: Days = 365) -> None:
    """Issue a new certificate for a party; its older ones stay valid until they end."""
    authority = _authority(ctx)
    with user_errors():
        entry = authority.rotate(party, KeyType.RSA if rsa else None, days)
    _print_issued("rotated", entry, authority)


@app.command()
def revoke(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="PARTY-OR-SERIAL",
            help="A party id, or one certificate's serial in hex.",
        ),
    ],
    reason: Annotated[
        RevocationReason, typer.Option("--reason", help="Why the certificate is revoked.")
    ],
    serial: Annotated[
        str | None,
        typer.Option(
            "--serial", metavar="SERIAL", help="Of PARTY's valid certificates, revoke this one."
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Revoke every valid certificate of PARTY.")
    ] = False,
) -> None:
    """Revoke a certificate and publish a fresh CRL.

    A party with several valid certificates (after `rotate`) needs --serial or --all; on a
    terminal the command asks which instead.
    """
    authority = _authority(ctx)
    with user_errors():
        chosen = _choose(authority, target, serial, every)
        revoked = authority.revoke(chosen, reason)
    out = console()
    for entry in revoked:
        out.print(
            f"revoked [bold]{escape(entry.party)}[/bold] certificate {entry.serial} "
            f"({reason.value})"
        )
    out.print(f"published {escape(str(authority.path / CRL_FILE))}")


def interactive() -> bool:
    """Whether a person can answer a question (stdin and stdout are a terminal)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _choose(authority: CertificateAuthority, target: str, serial: str | None, every: bool) -> str:
    """What to pass to ``CertificateAuthority.revoke``: a party (all of it) or one serial."""
    entries = authority.index()
    if not any(entry.party == target for entry in entries):
        if serial is not None or every:
            raise typer.BadParameter(f"--serial and --all go with a party id, not {target!r}")
        wanted = _normal(target)
        if wanted is None:
            raise UnknownParty(f"{target!r} is neither a party with certificates nor a serial")
        if not any(entry.serial == wanted and entry.revoked_at is None for entry in entries):
            raise CertificateUnknown(
                f"no unrevoked certificate has the serial {target}; `exchange certs list` "
                "shows the serials"
            )
        return target
    valid = authority.active(target)
    if serial is not None:
        wanted = _normal(serial)
        if not any(entry.serial == wanted for entry in valid):
            raise CertificateUnknown(
                f"{target} has no valid certificate with serial {serial}; its valid ones: "
                f"{_listed(valid) or 'none'} (`exchange certs list` shows them all)"
            )
        return serial
    if every or len(valid) <= 1:
        return target
    if interactive():
        return _ask(target, valid)
    raise AmbiguousRevocation(
        f"{target} has {len(valid)} valid certificates: {_listed(valid)}; name one with "
        f"`--serial SERIAL`, or revoke them all with `--all`"
    )


def _ask(party: str, valid: list[IssuedCertificate]) -> str:
    """Ask on the terminal which of the party's valid certificates to revoke."""
    out = console()
    out.print(f"{escape(party)} has {len(valid)} valid certificates:")
    for number, entry in enumerate(valid, 1):
        newest = " (newest, the one it signs with)" if number == len(valid) else ""
        out.print(f"  {number}. {entry.serial}, valid until {_date(entry.not_after)}{newest}")
    choices = [str(number) for number in range(1, len(valid) + 1)]
    question = f"Revoke which? ({', '.join(choices)} or all)"
    answer = str(typer.prompt(question)).strip().lower()
    while answer not in (*choices, "all"):
        answer = str(typer.prompt(f"Answer {', '.join(choices)} or all")).strip().lower()
    return party if answer == "all" else valid[int(answer) - 1].serial


def _listed(entries: list[IssuedCertificate]) -> str:
    return ", ".join(f"{entry.serial} (until {_date(entry.not_after)})" for entry in entries)


def _normal(serial: str) -> str | None:
    """A serial as the CA's index writes it: lowercase hex, no 0x, no leading zeros."""
    try:
        return f"{int(serial.removeprefix('0x').removeprefix('0X'), 16):x}"
    except ValueError:
        return None


@app.command()
def crl(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, help="Days until the next update.")] = 7,
) -> None:
    """Sign and publish a fresh CRL (run it before the current one's next update)."""
    authority = _authority(ctx)
    with user_errors():
        revocations = authority.write_crl(days)
    next_update = revocations.next_update_utc
    until = next_update.strftime("%Y-%m-%d %H:%M UTC") if next_update else "?"
    console().print(
        f"published {escape(str(authority.path / CRL_FILE))}: "
        f"{len(revocations)} revoked, next update {until}"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """List every certificate this CA issued, with its status."""
    authority = _authority(ctx)
    now = SYSTEM_CLOCK.now()
    with user_errors():
        entries = authority.index()
    roles = _roles()
    if as_json:
        print_json(
            [
                {**asdict(entry), "status": entry.status(now), "role": roles.get(entry.party)}
                for entry in entries
            ]
        )
        return
    if not entries:
        console().print(f"no certificates in {escape(str(authority.path))}")
        return
    table = Table(title=f"Certificates in {escape(str(authority.path))}")
    table.add_column("party")
    table.add_column("role")
    table.add_column("serial", no_wrap=True, overflow="fold")
    table.add_column("key type")
    table.add_column("not after", no_wrap=True)
    table.add_column("status")
    for entry in entries:
        status = entry.status(now)
        table.add_row(
            escape(entry.party),
            roles.get(entry.party, "?"),
            entry.serial,
            entry.key_type,
            _date(entry.not_after),
            f"[{_STATUS_STYLE[status]}]{status}[/]",
        )
    console(min_width=120).print(table)


def _roles() -> dict[str, str]:
    """Each catalog identity's role (department, collector, console); empty without a catalog.

    The CA serves parties and infrastructure alike; the catalog says which is which.
    """
    try:
        data = read_catalog_data(load_settings().catalog)
    except CatalogError:
        return {}
    return {party.id: party.role.value for party in data.parties}
