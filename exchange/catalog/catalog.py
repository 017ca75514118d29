"""Loading the catalog file and answering the node's questions: access and payload schema."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from pydantic import ValidationError

from exchange._hazmat.xml import Element, XMLSchema, load_schema, schema_violations
from exchange._validation import first_error
from exchange.catalog.model import CatalogData, Party, Role, Service
from exchange.catalog.typed import typed_value
from exchange.codec.xml import payload_element
from exchange.envelope.model import Envelope, Kind, ServiceRef
from exchange.exceptions import (
    AccessDenied,
    CatalogError,
    InvalidContent,
    UnknownParty,
    UnknownService,
)

SCHEMA_FILES = ("request.xsd", "request.schema.json", "response.xsd", "response.schema.json")


@dataclass(frozen=True)
class _Schemas:
    xsd: dict[Kind, XMLSchema]
    json: dict[Kind, jsonschema_rs.Draft202012Validator]
    json_documents: dict[Kind, dict[str, Any]]


class Catalog:
    """The single source of truth for services, providers, access rights and deadlines."""

    def __init__(self, data: CatalogData, schemas_dir: Path) -> None:
        self.data = data
        self.schemas_dir = schemas_dir
        self._services = {service.key: service for service in data.services}
        self._departments = tuple(party for party in data.parties if party.is_department)
        self._schemas = {
            service.key: _load_schemas(schemas_dir, service) for service in data.services
        }

    @classmethod
    def load(cls, path: Path, schemas_dir: Path) -> Catalog:
        """Read and check a catalog TOML file and every schema it names.

        Raises:
            CatalogError (catalog-invalid): unreadable, inconsistent, or a schema is missing.
        """
        return cls(read_catalog_data(path), schemas_dir)

    @property
    def services(self) -> tuple[Service, ...]:
        """Every service, in file order."""
        return self.data.services

    @property
    def parties(self) -> tuple[Party, ...]:
        """Every department (the parties that send and provide), in file order."""
        return self._departments

    @property
    def start_order(self) -> tuple[Party, ...]:
        """The departments, each after the providers of the services it calls.

        Started in this order (the demo, the tests' city), a department's first question
        finds its provider consuming. Ties keep file order; departments in a cycle of
        calls follow in file order.
        """
        needs = {party.id: set[str]() for party in self._departments}
        for service in self.data.services:
            for caller in service.callers:
                needs[caller].add(service.provider)
        order: list[Party] = []
        waiting = list(self._departments)
        while waiting:
            placed = {party.id for party in order}
            ready = [party for party in waiting if needs[party.id] <= placed] or waiting[:1]
            order.append(ready[0])
            waiting.remove(ready[0])
        return tuple(order)

    @property
    def identities(self) -> tuple[Party, ...]:
        """Every identity of the catalog, infrastructure (collector, console) included."""
        return self.data.parties

    def identity(self, role: Role) -> Party:
        """The one identity with an infrastructure ``role`` (e.g. the collector).

        Raises:
            UnknownParty (unknown-party): the catalog lists none.
        """
        for party in self.data.parties:
            if party.role is role:
                return party
        raise UnknownParty(f"the catalog lists no {role.value}; add a [[parties]] with that role")

    def check_party(self, party: str) -> Party:
        """``party`` is a department (see ``CatalogData.check_party``).

        Raises:
            NotAParty (not-a-party), UnknownParty (unknown-party).
        """
        return self.data.check_party(party)

    def knows(self, identity: str) -> bool:
        """Whether the catalog lists ``identity``, in any role: may it hold a certificate."""
        return any(party.id == identity for party in self.data.parties)

    def service(self, code: str, version: str | None = None) -> Service:
        """A service by code (and version; the newest when not given).

        Raises:
            UnknownService (unknown-service): no such service or version.
        """
        if version is not None:
            found = self._services.get((code, version))
        else:
            versions = [s for s in self.data.services if s.code == code]
            found = max(
                versions, key=lambda s: [int(p) for p in s.version.split(".")], default=None
            )
        if found is None:
            raise UnknownService(f"the catalog has no service {code} {version or ''}".rstrip())
        return found

    def check_request(self, envelope: Envelope) -> Service:
        """A request may go from its sender to its recipient for its service.

        Raises:
            UnknownService (unknown-service), AccessDenied (access-denied).
        """
        service = self.service(envelope.service.code, envelope.service.version)
        if envelope.recipient != service.provider:
            raise AccessDenied(f"{envelope.recipient} does not provide {service.code}")
        if envelope.sender not in service.callers:
            raise AccessDenied(f"{envelope.sender} may not call {service.code}")
        return service

    def check_attachments(self, envelope: Envelope) -> None:
        """The envelope's attachments are of a type, size and number its service allows.

        Raises:
            UnknownService (unknown-service), AttachmentRefused (attachment-refused).
        """
        if not envelope.attachments:
            return
        service = self.service(envelope.service.code, envelope.service.version)
        service.attachments.check(
            service.code, ((a.name, a.media_type, a.size) for a in envelope.attachments)
        )

    def check_payload(
        self, envelope: Envelope, *, xml: bool, document: Element | None = None
    ) -> None:
        """The payload of a request or response fits its service's schema.

        XML envelopes are checked against the XSD, JSON envelopes against the JSON Schema.
        For XML, ``document`` is the payload element as it was signed (a received envelope's
        verified tree); without it the payload is encoded as the signer will encode it.

        Raises:
            UnknownService (unknown-service), InvalidContent (invalid-content, names the field).
        """
        if envelope.kind not in (Kind.REQUEST, Kind.RESPONSE):
            return
        schemas = self._schemas.get((envelope.service.code, envelope.service.version))
        if schemas is None:
            raise UnknownService(f"the catalog has no service {envelope.service.code}")
        if envelope.payload is None:
            raise InvalidContent(
                f"a {envelope.kind.value} of {envelope.service.code} needs a payload"
            )
        if xml:
            if document is None:
                document = payload_element(envelope)
            violations = [
                (_xsd_xpath(document, path), _plain_xsd(message))
                for path, message in schema_violations(schemas.xsd[envelope.kind], document)
            ]
        else:
            violations = [
                _plain_json(error)
                for error in schemas.json[envelope.kind].iter_errors(envelope.payload)
            ]
        if violations:
            what = f"the {envelope.service.code} {envelope.kind.value} schema"
            listed = "; ".join(f"{where}: {message}" for where, message in violations)
            count = f"{len(violations)} place{'s' if len(violations) > 1 else ''}"
            raise InvalidContent(
                f"payload breaks {what} in {count}: {listed}",
                violations=[{"path": where, "problem": message} for where, message in violations],
            )

    def schema_files(self, service: Service) -> dict[str, Path]:
        """The four schema files of a service, by file name."""
        folder = self.schemas_dir / service.schemas
        return {name: folder / name for name in SCHEMA_FILES}

    def schema_documents(self, service: Service) -> dict[Kind, dict[str, Any]]:
        """The JSON Schema documents of a service's request and response."""
        schemas = self._schemas[service.key]
        return {kind: dict(document) for kind, document in schemas.json_documents.items()}

    def typed_payload(
        self, service: ServiceRef, kind: Kind, payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A request or response payload in its service's typed shape (its JSON Schema's).

        XML-decoded strings become integers and booleans where the schema says so, a scalar
        becomes a one-item list where it says array, and keys take the schema's order (the
        XSD's sequence order). A payload already typed comes back equal, so a handler sees
        the same dict whichever format carried it. Unknown services and other kinds are
        returned as they are; nothing here validates (see ``check_payload``).
        """
        schemas = self._schemas.get((service.code, service.version))
        if schemas is None or kind not in schemas.json_documents:
            return dict(payload)
        document = schemas.json_documents[kind]
        shaped = typed_value(dict(payload), document, document)
        return shaped if isinstance(shaped, dict) else dict(payload)

    def typed(self, envelope: Envelope) -> Envelope:
        """The envelope with its payload typed (``typed_payload``): what handlers and listeners get.

        Only the decoded view changes; the signed wire bytes stay as they were received.
        """
        if envelope.payload is None or envelope.kind not in (Kind.REQUEST, Kind.RESPONSE):
            return envelope
        payload = self.typed_payload(envelope.service, envelope.kind, envelope.payload)
        return envelope.model_copy(update={"payload": payload})


def read_catalog_data(path: Path) -> CatalogData:
    """Read and check a catalog TOML file (its parties and services; no schemas loaded).

    Raises:
        CatalogError (catalog-invalid): unreadable or inconsistent.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return CatalogData.model_validate(raw)
    except FileNotFoundError:
        raise CatalogError(f"no catalog at {path}; set EXCHANGE_CATALOG") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not TOML: {exc}") from None
    except ValidationError as exc:
        where, message = first_error(exc, "catalog")
        raise CatalogError(f"{path}: {where}: {message}") from None


def _xsd_xpath(document: Element, path: str | None) -> str:
    """An XSD error's element as an XPath of local names: ``/request/trees[2]/count``."""
    field = _xsd_field(document, path)
    steps = [] if field == "(payload)" else field.split(".")
    return "/" + "/".join([_local(document), *steps])


_XSD_ELEMENT = re.compile(r"^Element '[^']*'(?:, attribute '[^']*')?: ")
_XSD_FACET = re.compile(r"\[facet '[^']*'\] ")
_XSD_NAMESPACE = re.compile(r"\{[^}:]*:[^}]*\}")  # {urn:...}, not a pattern's {10}


def _plain_xsd(message: str) -> str:
    """libxml2's words without what the path already says (the element, its namespace)."""
    text = _XSD_FACET.sub("", _XSD_ELEMENT.sub("", message.strip()))
    return _XSD_NAMESPACE.sub("", text).rstrip(".")


def _plain_json(error: jsonschema_rs.ValidationError) -> tuple[str, str]:
    """A JSON Schema error as (JSON path, plain words); a missing or extra field is named."""
    steps = list(error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return _json_path([*steps, kind.property]), "missing: this field is required"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        names = ", ".join(str(name) for name in kind.unexpected)
        return _json_path(steps), f"unknown field(s) {names}: not allowed here"
    return _json_path(steps), error.message


def _json_path(steps: list[Any]) -> str:
    """``$.trees[0].count`` for the steps ``["trees", 0, "count"]``."""
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps)


def _xsd_field(document: Element, path: str | None) -> str:
    """The field an XSD error points at, as people write it: ``trees[2].count``.

    libxml2 gives "/s:request/s:trees[2]/s:count", but "/*/*[3]/*[2]" for elements in a
    default namespace (a sender's choice), so the steps are followed in the document
    itself and named by their local names.
    """
    steps = [step for step in (path or "").split("/") if step][1:]
    names: list[str] = []
    node: Element | None = document
    for step in steps:
        node = _child_at(node, step) if node is not None else None
        if node is None:  # not a path to an element: keep libxml2's steps, unprefixed
            return ".".join(step.split(":", 1)[-1] for step in steps)
        same = sum(1 for c in node.itersiblings(preceding=True) if c.tag == node.tag)
        alone = same == 0 and not any(c.tag == node.tag for c in node.itersiblings())
        names.append(_local(node) if alone else f"{_local(node)}[{same + 1}]")
    return ".".join(names) or "(payload)"


def _child_at(parent: Element, step: str) -> Element | None:
    """The child an XPath step of libxml2's (``s:trees[2]``, ``*[3]``, ``count``) names."""
    name, _, index = step.removesuffix("]").partition("[")
    local = name.split(":", 1)[-1]
    matches = [c for c in parent if isinstance(c.tag, str) and local in ("*", _local(c))]
    position = int(index) if index.isdigit() else 1
    return matches[position - 1] if 0 < position <= len(matches) else None


def _local(node: Element) -> str:
    return str(node.tag).rpartition("}")[2]


def _load_schemas(schemas_dir: Path, service: Service) -> _Schemas:
    folder = schemas_dir / service.schemas
    missing = [name for name in SCHEMA_FILES if not (folder / name).is_file()]
    if missing:
        raise CatalogError(f"{service.code}: missing {', '.join(missing)} in {folder}")
    try:
        xsd = {
            kind: load_schema(folder / f"{kind.value}.xsd")
            for kind in (Kind.REQUEST, Kind.RESPONSE)
        }
        documents: dict[Kind, dict[str, Any]] = {}
        for kind in (Kind.REQUEST, Kind.RESPONSE):
            documents[kind] = json.loads((folder / f"{kind.value}.schema.json").read_text())
            jsonschema_rs.meta.validate(documents[kind])
        validators = {
            kind: jsonschema_rs.Draft202012Validator(
                document, validate_formats=True, retriever=_refuse_remote
            )
            for kind, document in documents.items()
        }
    except Exception as exc:  # a broken schema file must stop the node at start, clearly
        detail = exc.message if isinstance(exc, jsonschema_rs.ValidationError) else exc
        raise CatalogError(f"{service.code}: bad schema in {folder}: {detail}") from None
    return _Schemas(xsd, validators, documents)


def _refuse_remote(uri: str) -> Any:
    # A service schema is one self-contained file: fetching a $ref at start-up would make
    # validation depend on the network and on whoever serves that address.
    raise ValueError(f"schemas may not refer outside their own file: {uri}")
