"""The package's public surface: exports import, type information ships, error codes are sane."""

from __future__ import annotations

import importlib
import inspect
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import exchange.exceptions
from exchange.exceptions import ExchangeError

REPO = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = (
    "exchange",
    "exchange.signing",
    "exchange.pki",
    "exchange.envelope",
    "exchange.codec",
    "exchange.testing",
    "exchange.ledger",
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
