"""docs/: the configuration reference matches the settings classes, and README points at docs/."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def generator() -> ModuleType:
    """scripts/gen_config_docs.py, imported (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", REPO / "scripts/gen_config_docs.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is what `make docs` writes now; run it after changing settings."""
    current = (REPO / "docs" / "configuration.md").read_text()
    assert current == generator().render(), "docs/configuration.md is stale: run `make docs`"


def test_every_settings_field_is_in_the_reference() -> None:
    """Each EXCHANGE_* field of both settings classes has a row."""
    text = (REPO / "docs" / "configuration.md").read_text()
    module = generator()
    for settings in (module.Settings, module.AuditSettings):
        for variable, _, _ in module.rows(settings):
            assert f"| `{variable}` |" in text


def test_readme_links_resolve_inside_the_repository() -> None:
    """The README's relative links (docs/architecture.md, ...) point at files that exist."""
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    local = [link for link in links if "://" not in link]
    assert "docs/architecture.md" in local
    assert "docs/configuration.md" in local
    for link in local:
        assert (REPO / link).exists(), link
    assert "../shared" not in readme
