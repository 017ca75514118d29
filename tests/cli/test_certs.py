"""Tests of ``exchange certs``: root CA, issue, rotate, revoke, CRL and the certificate list."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from typer.testing import CliRunner, Result

from exchange.cli import app

Cli = Callable[..., Result]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _rows(cli: Cli) -> list[dict[str, Any]]:
    result = cli("certs", "list", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


class TestInitCa:
    """``exchange certs init-ca``."""

    def test_creates_root_with_private_key_0600(self, cli: Cli, certs_dir: Path) -> None:
        """The root certificate, CRL and index appear, and only the owner can read root.key."""
        result = cli("certs", "init-ca", "--name", "Test Root", "--days", "30")
        assert result.exit_code == 0, result.output
        assert {"root.pem", "root.key", "crl.pem", "index.json"} <= {
            p.name for p in certs_dir.iterdir()
        }
        assert _mode(certs_dir / "root.key") == 0o600
        root = x509.load_pem_x509_certificate((certs_dir / "root.pem").read_bytes())
        assert "CN=Test Root" in root.subject.rfc4514_string()
        assert root.not_valid_after_utc - datetime.now(UTC) < timedelta(days=31)

    def test_twice_fails_without_replacing_the_root(self, cli: Cli, certs_dir: Path) -> None:
        """A second init-ca exits 1 with a pki-error and leaves the first root in place."""
        assert cli("certs", "init-ca").exit_code == 0
        before = (certs_dir / "root.pem").read_bytes()
        result = cli("certs", "init-ca")
        assert result.exit_code == 1
        assert result.stderr.startswith("error pki-error: a root CA already exists")
        assert (certs_dir / "root.pem").read_bytes() == before

    def test_certs_dir_option_beats_the_environment(
        self, cli: Cli, certs_dir: Path, tmp_path: Path
    ) -> None:
        """``--certs-dir`` on the certs group wins over EXCHANGE_CERTS_DIR."""
        other = tmp_path / "elsewhere"
        assert cli("certs", "--certs-dir", str(other), "init-ca").exit_code == 0
        assert (other / "root.pem").exists()
        assert not certs_dir.exists()


class TestIssue:
    """``exchange certs issue``."""

    def test_party_key_is_private_and_listed(self, cli: Cli, ca: Path) -> None:
        """Issuing writes a 0600 key beside the certificate and lists an EC certificate."""
        [row] = _rows(cli)
        assert (row["party"], row["key_type"], row["status"]) == ("single-center", "ec", "valid")
        folder = ca / "parties" / "single-center"
        assert _mode(folder / f"{row['serial']}.key") == 0o600
        assert (folder / f"{row['serial']}.pem").exists()

    def test_issue_twice_fails_pointing_to_rotate(self, cli: Cli, ca: Path) -> None:
        """A second issue for the same party exits 1 and tells the admin to rotate."""
        result = cli("certs", "issue", "single-center")
        assert result.exit_code == 1
        assert "error pki-error:" in result.stderr
        assert "rotate" in result.stderr
        assert len(_rows(cli)) == 1

    def test_rsa_key(self, cli: Cli, ca: Path) -> None:
        """``--rsa`` issues an RSA certificate."""
        assert cli("certs", "issue", "improvement", "--rsa").exit_code == 0
        key_types = {row["party"]: row["key_type"] for row in _rows(cli)}
        assert key_types == {"single-center": "ec", "improvement": "rsa"}

    def test_bad_party_id_is_refused(self, cli: Cli, ca: Path) -> None:
        """A party id that breaks the pattern is a pki-error, not a traceback, even forced."""
        result = cli("certs", "issue", "Not A Party", "--force")
        assert result.exit_code == 1
        assert "error pki-error:" in result.stderr
        assert "is not a party id" in result.stderr

    def test_without_a_root_ca(self, cli: Cli) -> None:
        """Issuing before init-ca says to run init-ca."""
        result = cli("certs", "issue", "single-center")
        assert result.exit_code == 1
        assert "error pki-error:" in result.stderr
        assert "exchange certs init-ca" in result.stderr


class TestRotate:
    """``exchange certs rotate``."""

    def test_old_and_new_certificates_stay_valid(self, cli: Cli, ca: Path) -> None:
        """After a rotation both certificates of the party are listed as valid."""
        old = _rows(cli)[0]["serial"]
        result = cli("certs", "rotate", "single-center")
        assert result.exit_code == 0, result.output
        rows = _rows(cli)
        assert rows[0]["serial"] == old
        assert [row["status"] for row in rows] == ["valid", "valid"]
        assert rows[1]["key_type"] == "ec"

    def test_rotate_to_rsa(self, cli: Cli, ca: Path) -> None:
        """``rotate --rsa`` moves the party to an RSA key."""
        assert cli("certs", "rotate", "single-center", "--rsa").exit_code == 0
        assert [row["key_type"] for row in _rows(cli)] == ["ec", "rsa"]

    def test_unknown_party(self, cli: Cli, ca: Path) -> None:
        """Rotating a party without a certificate is an unknown-party error."""
        result = cli("certs", "rotate", "improvement")
        assert result.exit_code == 1
        assert result.stderr.startswith("error unknown-party:")


class TestRevoke:
    """``exchange certs revoke``."""

    def test_by_party_revokes_all_its_certificates(self, cli: Cli, ca: Path) -> None:
        """Revoking a party marks each of its valid certificates revoked, with the reason."""
        assert cli("certs", "rotate", "single-center").exit_code == 0
        result = cli(
            "certs", "revoke", "single-center", "--all", "--reason", "cessation-of-operation"
        )
        assert result.exit_code == 0, result.output
        rows = _rows(cli)
        assert [row["status"] for row in rows] == ["revoked", "revoked"]
        assert {row["reason"] for row in rows} == {"cessation-of-operation"}

    def test_by_serial_revokes_only_that_certificate(self, cli: Cli, ca: Path) -> None:
        """Revoking a serial leaves the party's other certificate valid and updates the CRL."""
        assert cli("certs", "rotate", "single-center").exit_code == 0
        old, new = (row["serial"] for row in _rows(cli))
        result = cli("certs", "revoke", old.upper(), "--reason", "key-compromise")
        assert result.exit_code == 0, result.output
        assert {row["serial"]: row["status"] for row in _rows(cli)} == {
            old: "revoked",
            new: "valid",
        }
        crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
        assert [entry.serial_number for entry in crl] == [int(old, 16)]

    def test_table_shows_revoked(self, cli: Cli, ca: Path) -> None:
        """The list table shows a revoked certificate as revoked."""
        assert cli("certs", "revoke", "single-center", "--reason", "superseded").exit_code == 0
        table = cli("certs", "list").stdout
        assert "single-center" in table
        assert "revoked" in table
        assert "valid" not in table

    def test_reason_must_be_one_of_the_choices(self, cli: Cli, ca: Path) -> None:
        """An unknown reason is a usage error and revokes nothing."""
        result = cli("certs", "revoke", "single-center", "--reason", "boredom")
        assert result.exit_code == 2
        assert _rows(cli)[0]["status"] == "valid"

    def test_nothing_matches(self, cli: Cli, ca: Path) -> None:
        """Revoking an unknown serial is certificate-unknown, pointing at the list."""
        result = cli("certs", "revoke", "abcdef", "--reason", "unspecified")
        assert result.exit_code == 1
        assert result.stderr.startswith("error certificate-unknown:")
        assert "`exchange certs list`" in result.stderr

    def test_neither_party_nor_serial_is_unknown_party(self, cli: Cli, ca: Path) -> None:
        """A name the CA never issued to, and not hex: unknown-party."""
        result = cli("certs", "revoke", "nobody", "--reason", "unspecified")
        assert result.exit_code == 1
        assert result.stderr.startswith("error unknown-party: 'nobody' is neither")

    def test_several_valid_without_a_terminal_lists_serials(self, cli: Cli, ca: Path) -> None:
        """After rotate, revoking the party names both serials and revokes nothing."""
        assert cli("certs", "rotate", "single-center").exit_code == 0
        old, new = (row["serial"] for row in _rows(cli))
        result = cli("certs", "revoke", "single-center", "--reason", "key-compromise")
        assert result.exit_code == 1
        assert result.stderr.startswith("error certificate-ambiguous: single-center has 2 valid")
        assert old in result.stderr
        assert new in result.stderr
        assert "--serial SERIAL" in result.stderr
        assert "--all" in result.stderr
        assert [row["status"] for row in _rows(cli)] == ["valid", "valid"]

    def test_serial_option_revokes_only_that_one(self, cli: Cli, ca: Path) -> None:
        """--serial picks one of the party's valid certificates; the other stays valid."""
        assert cli("certs", "rotate", "single-center").exit_code == 0
        old, new = (row["serial"] for row in _rows(cli))
        result = cli("certs", "revoke", "single-center", "--serial", old, "--reason", "superseded")
        assert result.exit_code == 0, result.output
        assert {row["serial"]: row["status"] for row in _rows(cli)} == {
            old: "revoked",
            new: "valid",
        }

    def test_serial_option_of_another_certificate_is_refused(self, cli: Cli, ca: Path) -> None:
        """A --serial that is not one of the party's valid certificates: certificate-unknown."""
        result = cli("certs", "revoke", "single-center", "--serial", "12", "--reason", "superseded")
        assert result.exit_code == 1
        assert result.stderr.startswith(
            "error certificate-unknown: single-center has no valid certificate with serial 12"
        )
        assert _rows(cli)[0]["status"] == "valid"

    def test_on_a_terminal_it_asks_which(
        self, cli: Cli, ca: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Interactive: the serials are listed, numbered; the answer picks one."""
        monkeypatch.setattr("exchange.cli.certs.interactive", lambda: True)
        assert cli("certs", "rotate", "single-center").exit_code == 0
        old, new = (row["serial"] for row in _rows(cli))
        result = CliRunner().invoke(
            app,
            ["certs", "revoke", "single-center", "--reason", "superseded"],
            env={"EXCHANGE_CERTS_DIR": str(ca)},
            input="3\n2\n",
        )
        assert result.exit_code == 0, result.output
        assert f"1. {old}" in result.output
        assert f"2. {new}" in result.output
        assert "Answer 1, 2 or all" in result.output  # 3 is not a choice: asked again
        assert {row["serial"]: row["status"] for row in _rows(cli)} == {
            old: "valid",
            new: "revoked",
        }

    def test_sign_after_revoking_everything_says_revoked(
        self, cli: Cli, ca: Path, unsigned: Callable[..., Path]
    ) -> None:
        """The next sign names the cause (certificate-revoked), not unknown-party."""
        assert cli("certs", "revoke", "single-center", "--reason", "superseded").exit_code == 0
        result = cli("sign", str(unsigned("json")), "--as", "single-center")
        assert result.exit_code == 1
        assert result.stderr.startswith("error certificate-revoked: every certificate of")
        assert "`exchange certs issue single-center`" in result.stderr


class TestList:
    """``exchange certs list``."""

    def test_json_rows(self, cli: Cli, ca: Path) -> None:
        """``--json`` prints one object per certificate with dates, status, role and revocation."""
        [row] = _rows(cli)
        assert row["role"] == "department"
        assert set(row) == {
            "party",
            "role",
            "serial",
            "key_type",
            "not_before",
            "not_after",
            "revoked_at",
            "reason",
            "status",
        }
        assert int(row["serial"], 16) > 0
        not_after = datetime.fromisoformat(row["not_after"])
        assert timedelta(days=364) < not_after - datetime.now(UTC) <= timedelta(days=365)
        assert (row["revoked_at"], row["reason"]) == (None, None)

    def test_table_columns(self, cli: Cli, ca: Path) -> None:
        """The table names party, serial, key type, expiry date and status."""
        [row] = _rows(cli)
        table = cli("certs", "list").stdout
        for text in ("party", "serial", "key type", "not after", "status"):
            assert text in table
        assert row["serial"] in table
        assert row["not_after"][:10] in table
        assert "valid" in table

    def test_expiring_is_yellow_and_revoked_red(self, cli: Cli, ca: Path) -> None:
        """A certificate within 30 days of its end is 'expiring' in yellow; revoked is red."""
        assert cli("certs", "issue", "improvement", "--days", "10").exit_code == 0
        assert cli("certs", "revoke", "single-center", "--reason", "superseded").exit_code == 0
        assert [row["status"] for row in _rows(cli)] == ["revoked", "expiring"]
        table = cli("certs", "list", env={"FORCE_COLOR": "1"}).stdout
        assert "\x1b[33mexpiring" in table
        assert "\x1b[31mrevoked" in table

    def test_empty(self, cli: Cli, certs_dir: Path) -> None:
        """Without any certificate the list is empty, not an error."""
        assert _rows(cli) == []
        assert "no certificates" in cli("certs", "list").stdout


class TestCrl:
    """``exchange certs crl``."""

    def test_publishes_a_fresh_crl(self, cli: Cli, ca: Path) -> None:
        """The CRL is re-signed with the requested next update."""
        result = cli("certs", "crl", "--days", "3")
        assert result.exit_code == 0, result.output
        crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
        assert crl.next_update_utc is not None
        left = crl.next_update_utc - datetime.now(UTC)
        assert timedelta(days=2, hours=23) < left <= timedelta(days=3)

    def test_needs_a_root_ca(self, cli: Cli) -> None:
        """Without a root CA the crl command says to run init-ca."""
        result = cli("certs", "crl")
        assert result.exit_code == 1
        assert "exchange certs init-ca" in result.stderr


def _files_of(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


class TestKeyOffline:
    """The CA key kept off the machine, mounted only to sign."""

    def test_revoke_changes_nothing_and_says_what_to_do(
        self, cli: Cli, ca: Path, tmp_path: Path
    ) -> None:
        """Without root.key, revoke exits 1 with ca-key-offline; index, CRL, files unchanged."""
        away = tmp_path / "usb" / "root.key"
        away.parent.mkdir()
        (ca / "root.key").rename(away)
        before = _files_of(ca)
        result = cli("certs", "revoke", "single-center", "--reason", "key-compromise")
        assert result.exit_code == 1
        assert result.stderr.startswith("error ca-key-offline: the CA key is offline")
        assert "EXCHANGE_CA_KEY" in result.stderr
        assert _files_of(ca) == before
        assert _rows(cli)[0]["status"] == "valid"
        # The retry with the key mounted where the message said revokes it.
        retry = cli(
            "certs",
            "revoke",
            "single-center",
            "--reason",
            "key-compromise",
            env={"EXCHANGE_CA_KEY": str(away)},
        )
        assert retry.exit_code == 0, retry.output
        assert _rows(cli)[0]["status"] == "revoked"
        crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
        assert [f"{entry.serial_number:x}" for entry in crl] == [_rows(cli)[0]["serial"]]


class TestCorruptFiles:
    """A damaged CA directory gives a named error, never a traceback."""

    @pytest.mark.parametrize(
        ("name", "command"),
        [
            ("index.json", ("list",)),
            ("index.json", ("rotate", "single-center")),
            ("root.pem", ("revoke", "single-center", "--reason", "superseded")),
            ("crl.pem", ("crl",)),
        ],
        ids=["index-list", "index-rotate", "root-revoke", "crl-crl"],
    )
    def test_corrupt_file_is_named(
        self, cli: Cli, ca: Path, name: str, command: tuple[str, ...]
    ) -> None:
        """Exit 1 with pki-file-corrupt naming the file and what to do."""
        (ca / name).write_bytes(b"\x00garbage{")
        result = cli("certs", *command)
        assert result.exit_code == 1
        assert result.stderr.startswith("error pki-file-corrupt:")
        assert str(ca / name) in result.stderr
        assert "restore" in result.stderr


class TestCatalogCheck:
    """``exchange certs issue`` for an identity the catalog does not list."""

    def test_unknown_party_needs_force(self, cli: Cli, ca: Path) -> None:
        """Without --force: unknown-party naming the catalog and --force; with it: issued."""
        result = cli("certs", "issue", "stranger")
        assert result.exit_code == 1
        assert result.stderr.startswith("error unknown-party: stranger is not in the catalog")
        assert "--force" in result.stderr
        assert [row["party"] for row in _rows(cli)] == ["single-center"]
        forced = cli("certs", "issue", "stranger", "--force")
        assert forced.exit_code == 0, forced.output
        assert [row["party"] for row in _rows(cli)] == ["single-center", "stranger"]
