"""The catalog loader refuses every broken catalog with catalog-invalid and says what is wrong."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from exchange.catalog import ArchiveMode, Catalog, Role
from exchange.exceptions import CatalogError, NotAParty, UnknownParty

DATA = Path(__file__).resolve().parents[1] / "data"

PARTIES = """
version = "t-1"

[[parties]]
id = "single-center"
name = "Single Center"

[[parties]]
id = "improvement"
name = "Improvement"
"""

TREES = """
[[services]]
code = "tree-felling-permit"
version = "1"
title = "Tree felling"
provider = "{provider}"
callers = [{callers}]
deadline = {{ days = {days}, working_days = false }}
schemas = "services/tree-felling-permit/1"
"""

Write = Callable[..., Path]


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A copy of the test schemas, free to break."""
    target = tmp_path / "schemas"
    shutil.copytree(DATA / "schemas", target)
    return target


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write a catalog file from the parties and one tree-felling service per entry."""

    def make(*services: dict[str, object], parties: str = PARTIES, extra: str = "") -> Path:
        text = parties
        for service in services or ({},):
            values: dict[str, object] = {
                "provider": "improvement",
                "callers": '"single-center"',
                "days": 14,
                **service,
            }
            text += TREES.format(**values)
        path = tmp_path / "catalog.toml"
        path.write_text(text + extra)
        return path

    return make


def refused(path: Path, schemas: Path) -> str:
    """Load, expect catalog-invalid, return the message."""
    with pytest.raises(CatalogError) as info:
        Catalog.load(path, schemas)
    assert info.value.code == "catalog-invalid"
    return info.value.message


def test_a_good_catalog_loads(write: Write, schemas: Path) -> None:
    """The baseline the other tests break loads."""
    catalog = Catalog.load(write(), schemas)
    assert catalog.service("tree-felling-permit").provider == "improvement"
    assert catalog.service("tree-felling-permit").ordered is False  # unordered unless flagged


def test_a_service_may_be_ordered_per_case(tmp_path: Path, schemas: Path) -> None:
    """``ordered = true`` marks a service whose requests of one case run one at a time."""
    text = PARTIES + TREES.format(provider="improvement", callers='"single-center"', days=14)
    path = tmp_path / "catalog.toml"
    path.write_text(text + "ordered = true\n")
    assert Catalog.load(path, schemas).service("tree-felling-permit").ordered is True
    path.write_text(text + 'ordered = "yes please"\n')
    assert "ordered" in refused(path, schemas)


def test_a_service_says_what_the_collector_archives(tmp_path: Path, schemas: Path) -> None:
    """``archive`` is full by default, or digest; any other value is refused."""
    text = PARTIES + TREES.format(provider="improvement", callers='"single-center"', days=14)
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    catalog = Catalog.load(path, schemas)
    assert catalog.service("tree-felling-permit").archive is ArchiveMode.FULL
    assert catalog.data.archive_mode("no-such-service") is ArchiveMode.FULL
    path.write_text(text + 'archive = "digest"\n')
    assert (
        Catalog.load(path, schemas).data.archive_mode("tree-felling-permit") is ArchiveMode.DIGEST
    )
    path.write_text(text + 'archive = "none"\n')
    assert "archive" in refused(path, schemas)


def test_versions_of_a_service_archive_alike(tmp_path: Path, schemas: Path) -> None:
    """Records name a service by code: two versions with different archive modes are refused."""
    first = TREES.format(provider="improvement", callers='"single-center"', days=14)
    second = first.replace('version = "1"', 'version = "2"')
    path = tmp_path / "catalog.toml"
    path.write_text(PARTIES + first + second + 'archive = "digest"\n')
    assert "same archive mode" in refused(path, schemas)


def test_missing_file(tmp_path: Path, schemas: Path) -> None:
    """No file: the message names the path and the variable to set."""
    message = refused(tmp_path / "nowhere.toml", schemas)
    assert "nowhere.toml" in message
    assert "EXCHANGE_CATALOG" in message


def test_not_toml(tmp_path: Path, schemas: Path) -> None:
    """A syntax error is reported as such."""
    path = tmp_path / "catalog.toml"
    path.write_text('version = "1"\n[[parties]\n')
    assert "not TOML" in refused(path, schemas)


def test_unknown_caller(write: Write, schemas: Path) -> None:
    """A caller that is not a party of the catalog."""
    message = refused(write({"callers": '"single-center", "mayors-office"'}), schemas)
    assert "mayors-office" in message


def test_unknown_provider(write: Write, schemas: Path) -> None:
    """A provider that is not a party of the catalog."""
    assert "land-property" in refused(write({"provider": "land-property"}), schemas)


def test_duplicate_service(write: Write, schemas: Path) -> None:
    """The same code and version twice."""
    assert "once" in refused(write({}, {}), schemas)


def test_duplicate_party(write: Write, schemas: Path) -> None:
    """The same party id twice."""
    parties = PARTIES + '\n[[parties]]\nid = "improvement"\nname = "Again"\n'
    assert "unique" in refused(write(parties=parties), schemas)


def test_provider_among_callers(write: Write, schemas: Path) -> None:
    """A provider may not call its own service."""
    message = refused(write({"callers": '"single-center", "improvement"'}), schemas)
    assert "provider cannot call its own service" in message


def test_bad_deadline(write: Write, schemas: Path) -> None:
    """A deadline of zero days is refused, naming the field."""
    assert "deadline" in refused(write({"days": 0}), schemas)


def test_unknown_key(write: Write, schemas: Path) -> None:
    """A misspelt key is an error, not silently ignored."""
    assert "colour" in refused(write(extra='colour = "blue"\n'), schemas)


def test_missing_schema_file(write: Write, schemas: Path) -> None:
    """A service whose folder lacks one of the four files."""
    (schemas / "services/tree-felling-permit/1/response.xsd").unlink()
    message = refused(write(), schemas)
    assert "tree-felling-permit" in message
    assert "response.xsd" in message


def test_broken_json_schema(write: Write, schemas: Path) -> None:
    """A JSON Schema that is not JSON stops the load."""
    (schemas / "services/tree-felling-permit/1/request.schema.json").write_text("{")
    assert "bad schema" in refused(write(), schemas)


def test_invalid_json_schema(write: Write, schemas: Path) -> None:
    """A JSON Schema that breaks the metaschema stops the load."""
    (schemas / "services/tree-felling-permit/1/request.schema.json").write_text(
        '{"type": "no-such-type"}'
    )
    assert "bad schema" in refused(write(), schemas)


def test_json_schema_referring_elsewhere(write: Write, schemas: Path) -> None:
    """A $ref outside the schema's own file stops the load; nothing is fetched."""
    (schemas / "services/tree-felling-permit/1/request.schema.json").write_text(
        '{"$ref": "https://schemas.example.org/trees.json"}'
    )
    message = refused(write(), schemas)
    assert "bad schema" in message
    assert "https://schemas.example.org/trees.json" in message


def test_broken_xsd(write: Write, schemas: Path) -> None:
    """An XSD that does not compile stops the load."""
    (schemas / "services/tree-felling-permit/1/request.xsd").write_text("<xs:schema/>")
    assert "bad schema" in refused(write(), schemas)


INFRASTRUCTURE = PARTIES + '[[parties]]\nid = "collector"\nname = "Collector"\nrole = "collector"\n'


def test_infrastructure_identities_are_not_parties(write: Write, schemas: Path) -> None:
    """The collector is listed with its role, but ``parties`` are the departments only."""
    catalog = Catalog.load(write(parties=INFRASTRUCTURE), schemas)
    assert [p.id for p in catalog.parties] == ["single-center", "improvement"]
    assert [p.id for p in catalog.identities] == ["single-center", "improvement", "collector"]
    assert catalog.identity(Role.COLLECTOR).id == "collector"
    assert catalog.check_party("improvement").role is Role.DEPARTMENT
    with pytest.raises(NotAParty) as info:
        catalog.check_party("collector")
    assert info.value.code == "not-a-party"
    with pytest.raises(UnknownParty):
        catalog.check_party("mayors-office")


def test_catalog_without_a_collector(write: Write, schemas: Path) -> None:
    """Asking for the collector of a catalog that lists none says how to add it."""
    with pytest.raises(UnknownParty) as info:
        Catalog.load(write(), schemas).identity(Role.COLLECTOR)
    assert "role" in info.value.message


@pytest.mark.parametrize(
    "service", [{"provider": "collector"}, {"callers": '"single-center", "collector"'}]
)
def test_infrastructure_neither_provides_nor_calls(
    write: Write, schemas: Path, service: dict[str, object]
) -> None:
    """A service whose provider or caller is the collector is refused, naming it."""
    message = refused(write(service, parties=INFRASTRUCTURE), schemas)
    assert "collector" in message
    assert "infrastructure" in message


def test_unknown_role(write: Write, schemas: Path) -> None:
    """A role outside the vocabulary is refused, naming the field."""
    parties = PARTIES + '\n[[parties]]\nid = "mayor"\nname = "Mayor"\nrole = "boss"\n'
    assert "role" in refused(write(parties=parties), schemas)


def test_only_departments_have_adapters(write: Write, schemas: Path) -> None:
    """An adapter named on the collector is refused: it runs no node."""
    parties = INFRASTRUCTURE + 'adapter = "adapters.collector"\n'
    assert "only departments have adapters" in refused(write(parties=parties), schemas)


def test_an_adapter_is_a_module_name(write: Write, schemas: Path) -> None:
    """A path or a file name is no adapter: the message names the field."""
    parties = PARTIES + 'adapter = "adapters/improvement.py"\n'
    assert "adapter" in refused(write(parties=parties), schemas)


def test_start_order_puts_providers_before_their_callers(write: Write, schemas: Path) -> None:
    """The Single Center comes first in the file but calls Improvement: it starts last."""
    catalog = Catalog.load(write(), schemas)
    assert [p.id for p in catalog.parties] == ["single-center", "improvement"]
    assert [p.id for p in catalog.start_order] == ["improvement", "single-center"]


def test_start_order_survives_a_cycle_of_calls(write: Write, schemas: Path) -> None:
    """Two departments calling each other still all start, in file order."""
    back = TREES.format(provider="single-center", callers='"improvement"', days=14)
    catalog = Catalog.load(write(extra=back.replace('version = "1"', 'version = "2"')), schemas)
    assert [p.id for p in catalog.start_order] == ["single-center", "improvement"]
