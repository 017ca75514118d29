"""Settings from EXCHANGE_* variables: checked at load, with messages naming what is wrong."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from exchange.audit.config import AuditSettings
from exchange.cli import app
from exchange.config import Settings, describe_settings_error, packaged
from exchange.node.config import NodeConfig
from exchange.node.factory import node_config
from exchange.observe import node_companions


def test_the_retry_budget_and_recheck_reach_the_node_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EXCHANGE_HANDLER_RETRY_DELAYS (seconds, comma-separated) and EXCHANGE_WAIT_RECHECK."""
    monkeypatch.setenv("EXCHANGE_HANDLER_RETRY_DELAYS", "0.2, 0.5")
    monkeypatch.setenv("EXCHANGE_WAIT_RECHECK", "5")
    config = node_config(Settings())
    assert config.handler_retry_delays == (0.2, 0.5)
    assert config.wait_recheck == 5.0


def test_unset_the_budget_keeps_the_default() -> None:
    """Without the variables the node keeps NodeConfig's defaults."""
    config = node_config(Settings())
    assert config.handler_retry_delays == NodeConfig().handler_retry_delays
    assert config.wait_recheck == NodeConfig().wait_recheck


def test_an_empty_budget_means_no_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty EXCHANGE_HANDLER_RETRY_DELAYS: one run, then processing-failed."""
    monkeypatch.setenv("EXCHANGE_HANDLER_RETRY_DELAYS", "")
    assert Settings().handler_retry_delays == ()


@pytest.mark.parametrize("value", ["soon", "1,-2"])
def test_a_bad_budget_is_refused_with_what_to_write(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Not seconds, or a negative delay: refused with an example of the format."""
    monkeypatch.setenv("EXCHANGE_HANDLER_RETRY_DELAYS", value)
    with pytest.raises(ValidationError, match="1,10,60"):
        Settings()


def test_the_claim_lease_reaches_the_node_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """EXCHANGE_CLAIM_LEASE sets how long a worker's claim lasts."""
    monkeypatch.setenv("EXCHANGE_CLAIM_LEASE", "12.5")
    assert node_config(Settings()).claim_lease == 12.5


@pytest.mark.parametrize("value", ["0", "0.5", "-3", "100000", "soon"])
def test_a_bad_claim_lease_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A lease outside 1..86400 seconds, or not a number, is refused naming the variable."""
    monkeypatch.setenv("EXCHANGE_CLAIM_LEASE", value)
    with pytest.raises(ValidationError, match="claim_lease"):
        Settings()


def test_catalog_and_schemas_ship_with_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variables: the package's own copies, found by importlib.resources."""
    monkeypatch.delenv("EXCHANGE_CATALOG", raising=False)
    monkeypatch.delenv("EXCHANGE_SCHEMAS_DIR", raising=False)
    root = resources.files("exchange") / "data"
    assert Settings().catalog == root / "catalog.toml" == packaged("catalog.toml")
    assert Settings().schemas_dir == root / "schemas" == packaged("schemas")
    assert (packaged("schemas") / "envelope.xsd").is_file()
    assert packaged("catalog.toml").read_text(encoding="utf-8").startswith("# The city's")


def test_the_variables_override_the_packaged_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """EXCHANGE_CATALOG and EXCHANGE_SCHEMAS_DIR point a deployment at its own."""
    monkeypatch.setenv("EXCHANGE_CATALOG", str(tmp_path / "mine.toml"))
    monkeypatch.setenv("EXCHANGE_SCHEMAS_DIR", str(tmp_path / "schemas"))
    assert Settings().catalog == tmp_path / "mine.toml"
    assert Settings().schemas_dir == tmp_path / "schemas"


def test_missing_package_data_says_what_to_do() -> None:
    """A name the package does not ship is refused with how to fix it."""
    with pytest.raises(FileNotFoundError, match="EXCHANGE_CATALOG"):
        packaged("no-such-file.toml")


@pytest.mark.parametrize("value", ["debug", "Info", " WARNING "])
def test_the_log_level_is_taken_in_any_case(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """EXCHANGE_LOG_LEVEL=debug works as DEBUG does (it used to crash with a traceback)."""
    monkeypatch.setenv("EXCHANGE_LOG_LEVEL", value)
    assert Settings().log_level == value.strip().upper()


BAD_SETTINGS = [
    ("EXCHANGE_LOG_LEVEL", "verbose", "allowed: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("EXCHANGE_AMQP_URL", "http://guest:secret@broker/", "allowed: amqp://"),
    ("EXCHANGE_AMQP_URL", "127.0.0.1:5672", "amqps://"),
    ("EXCHANGE_BUS_PREFIX", "my prefix", "A-Z a-z 0-9 . _ -"),
    ("EXCHANGE_BUS_PREFIX", "k" * 65, "up to 64"),
    ("EXCHANGE_WAIT_RECHECK", "0", "greater than 0"),
]


@pytest.mark.parametrize(("variable", "value", "allowed"), BAD_SETTINGS)
def test_a_bad_setting_names_variable_value_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    """The message says which variable, what it was set to, and what it may be."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    message = describe_settings_error(info.value)
    shown = value.replace("guest:secret@", "***@")
    assert message.startswith(f"bad {variable}={shown!r}: "), message
    assert allowed in message


def test_a_password_in_a_bad_url_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message goes to terminals and logs: the URL's password is masked."""
    monkeypatch.setenv("EXCHANGE_AMQP_URL", "https://user:hunter2@broker/")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "hunter2" not in describe_settings_error(info.value)


BAD_AUDIT_SETTINGS = [
    ("CHECKPOINT_EVERY", "0", "greater than or equal to 1"),
    ("BATCH_SIZE", "-5", "greater than or equal to 1"),
    ("SHIP_INTERVAL", "0", "greater than 0"),
    ("SCHEMA_NAME", "audit-central; drop", "should match pattern"),
]


@pytest.mark.parametrize(("variable", "value", "allowed"), BAD_AUDIT_SETTINGS)
def test_a_bad_audit_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    """EXCHANGE_AUDIT_* variables are checked at load too, named with their own prefix."""
    monkeypatch.setenv(f"EXCHANGE_AUDIT_{variable}", value)
    with pytest.raises(ValidationError) as info:
        AuditSettings()
    message = describe_settings_error(info.value, "EXCHANGE_AUDIT_")
    assert message.startswith(f"bad EXCHANGE_AUDIT_{variable}={value!r}: "), message
    assert allowed in message


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("EXCHANGE_LOG_LEVEL", "loud", ["services"]),
        ("EXCHANGE_BUS_PREFIX", "a b", ["topology", "apply"]),
        ("EXCHANGE_AUDIT_BATCH_SIZE", "0", ["trace", "KZN-1"]),
    ],
)
def test_the_cli_answers_a_bad_setting_with_config_error(
    variable: str, value: str, command: list[str]
) -> None:
    """No traceback: exit 1 and ``error config-error: bad VARIABLE='value': ...``."""
    result = CliRunner().invoke(app, command, env={variable: value})
    assert result.exit_code == 1
    assert f"error config-error: bad {variable}={value!r}: " in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["", "0"])
def test_an_empty_or_zero_metrics_port_serves_nothing(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """EXCHANGE_METRICS_PORT empty or 0 is off, like unset: no companions for build_node."""
    monkeypatch.setenv("EXCHANGE_METRICS_PORT", value)
    settings = Settings()
    assert settings.metrics_port is None
    assert node_companions(settings) == []


def test_a_metrics_port_gives_the_node_an_observer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port set makes one companion: the observer that serves it."""
    monkeypatch.setenv("EXCHANGE_METRICS_PORT", "9464")
    settings = Settings()
    assert settings.metrics_port == 9464
    assert len(node_companions(settings)) == 1


@pytest.mark.parametrize("value", ["70000", "-1", "http"])
def test_a_bad_metrics_port_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Outside 0..65535, or not a number: refused naming the variable."""
    monkeypatch.setenv("EXCHANGE_METRICS_PORT", value)
    with pytest.raises(ValidationError, match="metrics_port"):
        Settings()
