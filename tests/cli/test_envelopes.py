"""Tests of ``exchange sign`` and ``exchange verify`` on files, against a CA made by the CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import Result

from exchange._clock import SystemClock
from exchange.pki.authority import CertificateAuthority
from exchange.signing import WireFormat, seal, sniff_format
from exchange.testing import ThrowawayPKI, make_envelope
from tests.signing.fuzz._material import material_of
from tests.signing.fuzz._mutations import Header, KeyInfo, X5c, XmlAttribute

Cli = Callable[..., Result]
Unsigned = Callable[..., Path]


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify configures structlog for the process: keep it from leaking into other tests."""
    monkeypatch.setattr("exchange.cli.envelopes.configure_logging", lambda *_, **__: None)


def _serials(cli: Cli) -> list[str]:
    return [row["serial"] for row in json.loads(cli("certs", "list", "--json").stdout)]


def _verify_json(cli: Cli, path: Path) -> tuple[int, dict[str, Any]]:
    result = cli("verify", str(path), "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, report


def _sign(cli: Cli, source: Path, out: Path, *extra: str) -> Path:
    result = cli("sign", str(source), "--as", "single-center", "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return out


class TestSign:
    """``exchange sign``."""

    @pytest.mark.parametrize("wire_format", ["xml", "json"])
    def test_sign_then_verify(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path, wire_format: str
    ) -> None:
        """A signed file keeps its input's format and verifies, naming the signer's serial."""
        source = unsigned(wire_format, name=f"unsigned.{wire_format}")
        signed = cli("sign", str(source), "--as", "single-center")
        assert signed.exit_code == 0, signed.output
        assert sniff_format(signed.stdout_bytes) is WireFormat(wire_format)
        path = tmp_path / f"signed.{wire_format}"
        path.write_bytes(signed.stdout_bytes)
        result = cli("verify", str(path))
        assert result.exit_code == 0, result.output
        [serial] = _serials(cli)
        assert "sender          single-center" in result.stdout
        assert "recipient       improvement" in result.stdout
        assert "service         tree-felling-permit v1" in result.stdout
        assert "case_id         KZN-2026-000001" in result.stdout
        assert f"signer serial   {serial}" in result.stdout

    def test_format_override(self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path) -> None:
        """``--format json`` turns an XML envelope into a JWS that verifies."""
        out = _sign(cli, unsigned("xml"), tmp_path / "signed.json", "--format", "json")
        assert sniff_format(out.read_bytes()) is WireFormat.JSON
        code, report = _verify_json(cli, out)
        assert (code, report["ok"], report["format"]) == (0, True, "json")

    def test_out_writes_only_the_file(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """With ``--out`` the signed bytes go to the file and nothing to stdout."""
        out = tmp_path / "signed.xml"
        result = cli("sign", str(unsigned("xml")), "--as", "single-center", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert out.read_bytes().startswith(b"<?xml")

    def test_sign_for_another_sender(self, cli: Cli, ca: Path, unsigned: Unsigned) -> None:
        """A party cannot sign an envelope whose sender is someone else."""
        assert cli("certs", "issue", "improvement").exit_code == 0
        result = cli("sign", str(unsigned("xml")), "--as", "improvement")
        assert result.exit_code == 1
        assert result.stderr.startswith("error sender-mismatch:")
        assert result.stdout == ""

    def test_party_without_certificate(self, cli: Cli, ca: Path, unsigned: Unsigned) -> None:
        """Signing as a party with no certificate says how to issue one."""
        source = unsigned("json", sender="architecture")
        result = cli("sign", str(source), "--as", "architecture")
        assert result.exit_code == 1
        assert result.stderr.startswith("error unknown-party:")
        assert "exchange certs issue architecture" in result.stderr

    @pytest.mark.parametrize("wire_format", ["xml", "json"])
    def test_refuses_a_signed_file(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path, wire_format: str
    ) -> None:
        """Feeding an already signed envelope to sign is a clear malformed error."""
        out = _sign(cli, unsigned(wire_format), tmp_path / f"signed.{wire_format}")
        result = cli("sign", str(out), "--as", "single-center")
        assert result.exit_code == 1
        assert result.stderr.startswith("error malformed: the file is already signed")

    def test_refuses_a_non_envelope(self, cli: Cli, ca: Path, tmp_path: Path) -> None:
        """A file that is not an envelope is malformed, with a hint about the formats."""
        path = tmp_path / "note.xml"
        path.write_bytes(b"<note>hello</note>")
        result = cli("sign", str(path), "--as", "single-center")
        assert result.exit_code == 1
        assert result.stderr.startswith("error malformed:")
        assert "hint:" in result.stderr

    def test_missing_file(self, cli: Cli, ca: Path, tmp_path: Path) -> None:
        """A missing input file is a usage error, not a traceback."""
        result = cli("sign", str(tmp_path / "nope.xml"), "--as", "single-center")
        assert result.exit_code == 2


class TestVerify:
    """``exchange verify``."""

    def test_json_report(self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path) -> None:
        """``--json`` prints ok and every field of the verified envelope."""
        source = unsigned("xml")
        out = _sign(cli, source, tmp_path / "signed.xml")
        code, report = _verify_json(cli, out)
        assert code == 0
        assert report["ok"] is True
        assert report["message_id"] == source.stem
        assert report["kind"] == "request"
        assert report["service"] == {"code": "tree-felling-permit", "version": "1"}
        assert report["correlation_id"] is None
        assert (report["signer"], report["signer_serial"]) == ("single-center", _serials(cli)[0])

    def test_tampered_xml(self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path) -> None:
        """An XML envelope changed after signing prints signature-invalid and exits 1."""
        out = _sign(cli, unsigned("xml"), tmp_path / "signed.xml")
        out.write_bytes(out.read_bytes().replace(b"Ivan Petrov", b"Ivan Petrova"))
        result = cli("verify", str(out))
        assert result.exit_code == 1
        assert result.stderr.startswith("error signature-invalid:")
        assert result.stdout == ""

    def test_tampered_json(self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path) -> None:
        """A JWS whose payload was changed after signing is reported as signature-invalid."""
        out = _sign(cli, unsigned("json"), tmp_path / "signed.json")
        jws = json.loads(out.read_bytes())
        payload = base64.urlsafe_b64decode(jws["payload"] + "=" * (-len(jws["payload"]) % 4))
        changed = payload.replace(b"Ivan Petrov", b"Ivan Petrova")
        jws["payload"] = base64.urlsafe_b64encode(changed).rstrip(b"=").decode()
        out.write_text(json.dumps(jws))
        code, report = _verify_json(cli, out)
        assert (code, report["ok"], report["code"]) == (1, False, "signature-invalid")

    @pytest.mark.parametrize("content", [b"hello, world\n", b"<note>hello</note>"])
    def test_non_envelope_is_malformed(
        self, cli: Cli, ca: Path, tmp_path: Path, content: bytes
    ) -> None:
        """A file that is not an envelope at all prints malformed and exits 1."""
        path = tmp_path / "note.txt"
        path.write_bytes(content)
        result = cli("verify", str(path))
        assert result.exit_code == 1
        assert result.stderr.startswith("error malformed:")

    def test_unsigned_envelope(self, cli: Cli, ca: Path, unsigned: Unsigned) -> None:
        """An envelope that was never signed fails verification with signature-invalid."""
        result = cli("verify", str(unsigned("xml")))
        assert result.exit_code == 1
        assert result.stderr.startswith("error signature-invalid:")

    def test_other_trust_store(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """Against another exchange's root the signer is certificate-unknown."""
        out = _sign(cli, unsigned("xml"), tmp_path / "signed.xml")
        other = tmp_path / "other"
        assert cli("certs", "--certs-dir", str(other), "init-ca").exit_code == 0
        result = cli("verify", str(out), "--certs-dir", str(other))
        assert result.exit_code == 1
        assert result.stderr.startswith("error certificate-unknown:")

    def test_no_trust_store(self, cli: Cli, unsigned: Unsigned, tmp_path: Path) -> None:
        """Without a root CA in the certs directory verify says to run init-ca."""
        code, report = _verify_json(cli, unsigned("xml"))
        assert (code, report["code"]) == (1, "certificate-unknown")
        assert "exchange certs init-ca" in report["message"]


class TestExpiry:
    """An envelope past its ``expires_at``: refused as a node would, unless asked otherwise."""

    @pytest.fixture
    def expired(self, ca: Path, tmp_path: Path) -> Path:
        """A validly signed XML request whose expiry passed an hour ago."""
        now = SystemClock().now()
        envelope = make_envelope(
            created_at=now - timedelta(hours=2), expires_at=now - timedelta(hours=1)
        )
        path = tmp_path / "expired.xml"
        path.write_bytes(seal(envelope, CertificateAuthority(ca).credentials("single-center")))
        return path

    def test_expired_envelope_exits_1(self, cli: Cli, expired: Path) -> None:
        """Past expires_at, verify prints expired (naming the time and the flag) and exits 1."""
        result = cli("verify", str(expired))
        assert result.exit_code == 1
        assert result.stderr.startswith("error expired: the envelope expired at")
        assert "--signature-only" in result.stderr
        code, report = _verify_json(cli, expired)
        assert (code, report["ok"], report["code"]) == (1, False, "expired")

    def test_signature_only_accepts_the_expired_envelope(self, cli: Cli, expired: Path) -> None:
        """With --signature-only the same file verifies: its signature and certificate hold."""
        result = cli("verify", str(expired), "--signature-only")
        assert result.exit_code == 0, result.output
        assert "signature and certificate valid" in result.stdout
        result = cli("verify", str(expired), "--signature-only", "--json")
        report = json.loads(result.stdout)
        assert (result.exit_code, report["ok"]) == (0, True)
        assert report["expires_at"] < SystemClock().now().isoformat()

    def test_signature_only_still_checks_the_signature(self, cli: Cli, expired: Path) -> None:
        """--signature-only does not weaken the signature check: tampering still fails."""
        expired.write_bytes(expired.read_bytes().replace(b"Ivan Petrov", b"Ivan Petrova"))
        result = cli("verify", str(expired), "--signature-only")
        assert result.exit_code == 1
        assert result.stderr.startswith("error signature-invalid:")

    def test_current_envelope_reports_expiry_checked(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """Without the flag a current envelope is reported with its expiry checked."""
        out = _sign(cli, unsigned("xml"), tmp_path / "signed.xml")
        result = cli("verify", str(out))
        assert result.exit_code == 0
        assert "signature, certificate and expiry valid" in result.stdout


class TestHostileFiles:
    """Inputs that once gave a traceback: a named code and exit 1 instead."""

    @pytest.mark.parametrize(
        ("mutation", "codes"),
        [
            (Header("alg", ["ES256"]), {"unsupported-algorithm"}),
            (X5c(("cert:unknown-key-algorithm",)), {"unsupported-algorithm"}),
            (KeyInfo(("cert:unknown-key-algorithm",)), {"unsupported-algorithm"}),
            (XmlAttribute("root", "xmlns:p", "rel"), {"malformed"}),
        ],
        ids=["alg-list", "x5c-unknown-key", "keyinfo-unknown-key", "relative-namespace"],
    )
    def test_crashing_input_is_a_named_error(
        self, cli: Cli, ca: Path, tmp_path: Path, mutation: Any, codes: set[str]
    ) -> None:
        """Each class of issue 12's crashing input exits 1 with its code, no traceback."""
        assert cli("certs", "issue", "improvement").exit_code == 0  # the material needs it
        pki = ThrowawayPKI(ca, CertificateAuthority(ca))
        path = tmp_path / "hostile"
        path.write_bytes(mutation.apply(material_of(pki, make_envelope(clock=SystemClock()))))
        with structlog.testing.capture_logs() as logs:  # a verify-failed logs its stack trace
            code, report = _verify_json(cli, path)
        assert (code, report["ok"]) == (1, False)
        assert report["code"] in codes
        unexpected = [e for e in logs if e["event"] == "verify.unexpected"]
        assert len(unexpected) == (report["code"] == "verify-failed")

    def test_a_verification_bug_shows_no_traceback(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """In a real process, verify-failed prints one named error and valid JSON, no trace."""
        path = _sign(cli, unsigned("xml"), tmp_path / "signed.xml")
        # A bug deep inside verification, planted in the child process before the CLI runs.
        script = (
            "import sys, exchange.signing as signing\n"
            "def boom(*args, **kwargs):\n"
            "    raise RecursionError('stands in for a bug in a parser')\n"
            "signing.verify_xml = boom\n"
            "from exchange.cli import main\n"
            f"sys.argv = ['exchange', 'verify', {str(path)!r}, '--json']\n"
            "main()\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "EXCHANGE_CERTS_DIR": str(ca)},
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert json.loads(done.stdout)["code"] == "verify-failed"
        assert b"Traceback" not in done.stderr


class TestRotationAndRevocation:
    """Envelopes signed before a rotation or revocation, checked with ``exchange verify``."""

    def test_rotation_keeps_old_signatures_valid(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """An envelope signed with the pre-rotation key still verifies, naming the old serial."""
        old_credentials = CertificateAuthority(ca).credentials("single-center")
        [old] = _serials(cli)
        assert cli("certs", "rotate", "single-center").exit_code == 0
        [_, new] = _serials(cli)
        early = tmp_path / "early.xml"
        early.write_bytes(seal(make_envelope(clock=SystemClock()), old_credentials))
        code, report = _verify_json(cli, early)
        assert (code, report["signer_serial"]) == (0, old)
        late = _sign(cli, unsigned("xml"), tmp_path / "late.xml")
        code, report = _verify_json(cli, late)
        assert (code, report["signer_serial"]) == (0, new)

    @pytest.mark.parametrize("by", ["party", "serial"])
    def test_revoked_signer(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path, by: str
    ) -> None:
        """After revocation (by party or by serial) the envelope fails as certificate-revoked."""
        out = _sign(cli, unsigned("xml"), tmp_path / "signed.xml")
        assert cli("verify", str(out)).exit_code == 0
        [serial] = _serials(cli)
        target = "single-center" if by == "party" else serial
        assert cli("certs", "revoke", target, "--reason", "key-compromise").exit_code == 0
        result = cli("verify", str(out))
        assert result.exit_code == 1
        assert result.stderr.startswith("error certificate-revoked:")
        assert serial in result.stderr
        code, report = _verify_json(cli, out)
        assert (code, report["ok"], report["code"]) == (1, False, "certificate-revoked")

    def test_older_crl_copied_back_is_refused(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """A pre-revocation crl.pem copied back does not un-revoke: revocation-unknown."""
        out = _sign(cli, unsigned("xml"), tmp_path / "signed.xml")
        old_crl = (ca / "crl.pem").read_bytes()
        assert cli("verify", str(out)).exit_code == 0
        assert cli("certs", "revoke", "single-center", "--reason", "key-compromise").exit_code == 0
        assert cli("verify", str(out)).stderr.startswith("error certificate-revoked:")
        (ca / "crl.pem").write_bytes(old_crl)
        result = cli("verify", str(out))
        assert result.exit_code == 1
        assert result.stderr.startswith("error revocation-unknown: an older CRL")
        assert (ca / "crl-numbers.json").exists()


class TestInfrastructureIdentities:
    """The collector has a certificate of its own, but it is not a party."""

    def test_collector_certificate_is_issued_and_listed_with_its_role(
        self, cli: Cli, ca: Path
    ) -> None:
        """``certs issue collector`` works like a party's; ``certs list`` names the role."""
        assert cli("certs", "issue", "collector").exit_code == 0
        rows = json.loads(cli("certs", "list", "--json").stdout)
        roles = {row["party"]: row["role"] for row in rows}
        assert roles == {"single-center": "department", "collector": "collector"}

    def test_envelope_signed_by_the_collector_is_refused(
        self, cli: Cli, ca: Path, unsigned: Unsigned, tmp_path: Path
    ) -> None:
        """An envelope the collector signed (as its sender) fails with not-a-party."""
        assert cli("certs", "issue", "collector").exit_code == 0
        source = unsigned("json", sender="collector")
        out = tmp_path / "signed.json"
        assert cli("sign", str(source), "--as", "collector", "--out", str(out)).exit_code == 0
        code, report = _verify_json(cli, out)
        assert (code, report["ok"], report["code"]) == (1, False, "not-a-party")
        assert "collector" in report["message"]
