"""The package's public surface: exports import, type information ships, error codes are sane,
and a wheel built from the checkout works installed anywhere (its catalog and schemas inside).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import exchange.exceptions
from exchange._clock import SYSTEM_CLOCK
from exchange.exceptions import ExchangeError
from exchange.signing import WireFormat, seal
from exchange.testing import ThrowawayPKI, make_envelope

REPO = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = (
    "exchange",
    "exchange.signing",
    "exchange.pki",
    "exchange.envelope",
    "exchange.codec",
    "exchange.testing",
    "exchange.ledger",
    "exchange.observe",
    "exchange.console",
)
CODE = re.compile(r"^[a-z][a-z-]+$")
# Abstract bases that carry the code of their most common leaf, on purpose: catching the base
# and reporting its code is never wrong. Any other shared code is a bug.
SHARED_CODES = {
    "EnvelopeError": "Malformed",
    "SignatureError": "SignatureInvalid",
    "TrustError": "CertificateUnknown",
}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_names_import(module_name: str) -> None:
    """Every name in a public module's __all__ exists, and __all__ has no duplicates."""
    module = importlib.import_module(module_name)
    names: list[str] = list(module.__all__)
    assert names, module_name
    assert len(names) == len(set(names)), module_name
    for name in names:
        assert getattr(module, name) is not None, f"{module_name}.{name}"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_star_import(module_name: str) -> None:
    """``from module import *`` works and binds exactly __all__."""
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # noqa: S102
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(importlib.import_module(module_name).__all__)


def test_top_level_exports_are_the_same_objects() -> None:
    """exchange re-exports the very objects of its subpackages, not copies."""
    import exchange
    import exchange.envelope
    import exchange.signing

    assert exchange.Envelope is exchange.envelope.Envelope
    assert exchange.seal is exchange.signing.seal
    assert exchange.unseal is exchange.signing.unseal


def test_ships_py_typed() -> None:
    """exchange carries the py.typed marker, and the build includes it as package data."""
    assert resources.files("exchange").joinpath("py.typed").is_file()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["exchange"]


def _error_classes() -> list[type[ExchangeError]]:
    return [
        cls
        for _, cls in inspect.getmembers(exchange.exceptions, inspect.isclass)
        if issubclass(cls, ExchangeError) and cls.__module__ == exchange.exceptions.__name__
    ]


def test_error_codes_are_well_formed() -> None:
    """Every exchange error has a lowercase, dash-separated code and a docstring."""
    classes = _error_classes()
    assert len(classes) > 10
    for cls in classes:
        assert CODE.match(cls.code), (cls.__name__, cls.code)
        assert cls.__doc__, cls.__name__


def test_error_codes_are_distinct_or_documented() -> None:
    """Two errors share a code only where a base deliberately carries its main leaf's code."""
    by_code: dict[str, list[str]] = {}
    for cls in _error_classes():
        by_code.setdefault(cls.code, []).append(cls.__name__)
    for code, names in by_code.items():
        if len(names) == 1:
            continue
        bases = [name for name in names if name in SHARED_CODES]
        leaves = [name for name in names if name not in SHARED_CODES]
        assert len(leaves) == 1, f"code {code!r} is shared by {names}"
        for base in bases:
            assert SHARED_CODES[base] == leaves[0], f"code {code!r}: {base} vs {leaves[0]}"
            base_cls = getattr(exchange.exceptions, base)
            assert issubclass(getattr(exchange.exceptions, leaves[0]), base_cls)


def test_errors_render_their_code() -> None:
    """str() of an error starts with its code; data is kept for the audit log."""
    error = exchange.exceptions.SenderMismatch("signed by improvement", serial=42)
    assert str(error) == "sender-mismatch: signed by improvement"
    assert error.data == {"serial": 42}
    assert error.message == "signed by improvement"


# What the installed package does from a directory that is no checkout: load its own
# catalog and a service's schemas, and check an example payload (and a broken one).
INSTALLED_CHECK = """
import json, sys
import exchange
from exchange.catalog import Catalog
from exchange.config import Settings
from exchange.console.render import asset, template
from exchange.exceptions import InvalidContent
from exchange.testing import make_envelope

settings = Settings()
catalog = Catalog.load(settings.catalog, settings.schemas_dir)
service = catalog.service("tree-felling-permit")
payload = json.loads(open(sys.argv[1], encoding="utf-8").read())
envelope = catalog.typed(make_envelope(payload=payload))
catalog.check_payload(envelope, xml=True)
catalog.check_payload(envelope, xml=False)
try:
    catalog.check_payload(make_envelope(payload={"trees": "many"}), xml=False)
    broken = None
except InvalidContent as exc:
    broken = exc.code
print(json.dumps({
    "package": exchange.__file__,
    "catalog": str(settings.catalog),
    "schemas": str(catalog.schema_files(service)["request.xsd"]),
    "parties": [party.id for party in catalog.parties],
    "broken": broken,
    "console": [template("base.html").template[:15], len(asset("live.js")) > 0],
}))
"""
SOURCES = ("pyproject.toml", "README.md", "exchange", "adapters")


def _run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with the wheel built from it (dependencies: the
    test venv's site-packages, so nothing is downloaded)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy: building in place would leave build/ in the checkout
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(origin, source / name, ignore=ignore)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    env = _clean_env()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "dist", "."],
        source,
        env,
    )
    [wheel] = (source / "dist").glob("kazan_exchange-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], base, env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], base, env)
    purelib = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, env
        ).strip()
    )
    # After the venv's own site-packages: the installed wheel wins over the editable checkout.
    (purelib / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _clean_env() -> dict[str, str]:
    """The environment without EXCHANGE_* settings or PYTHONPATH: defaults must do."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EXCHANGE_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }


@pytest.mark.slow
def test_installed_wheel_loads_its_catalog_and_schemas(installed: Path, tmp_path: Path) -> None:
    """From a directory that is no checkout, the installed package finds its own data (the
    catalog, the schemas, the console's templates)."""
    example = REPO / "tests/data/examples/tree-felling-permit/request.json"
    out = _run(
        [installed / "bin" / "python", "-c", INSTALLED_CHECK, example], tmp_path, _clean_env()
    )
    report = json.loads(out)
    assert report["package"].startswith(str(installed))
    assert report["catalog"].startswith(str(installed))
    assert report["catalog"].endswith("exchange/data/catalog.toml")
    assert report["schemas"].startswith(str(installed))
    assert "improvement" in report["parties"]
    assert report["broken"] == "invalid-content"
    assert report["console"] == ["<!doctype html>", True]  # the console's templates ship


@pytest.mark.slow
def test_installed_commands_run_anywhere(installed: Path, tmp_path: Path) -> None:
    """``exchange services`` lists the packaged catalog; ``exchange verify`` checks an
    envelope against the packaged envelope schema and catalog."""
    exchange_cli = installed / "bin" / "exchange"
    services = _run([exchange_cli, "services"], tmp_path, _clean_env())
    assert "tree-felling-permit" in services
    assert "land-plot-info" in services
    pki = ThrowawayPKI.create(tmp_path / "pki", clock=SYSTEM_CLOCK)
    envelope = make_envelope(SYSTEM_CLOCK)
    signed = tmp_path / "signed.xml"
    signed.write_bytes(seal(envelope, pki.credentials("single-center"), WireFormat.XML))
    env = {**_clean_env(), "EXCHANGE_CERTS_DIR": str(pki.path)}
    report = json.loads(_run([exchange_cli, "verify", "--json", signed], tmp_path, env))
    assert report["ok"] is True
    assert report["message_id"] == envelope.message_id
