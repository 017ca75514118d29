"""``exchange services``: the catalog's services, and one service's contract."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from exchange.catalog import Catalog, Deadline, Service
from exchange.catalog.asyncapi import asyncapi_document
from exchange.catalog.typed import resolve_ref
from exchange.cli._output import console, fail, load_settings, print_json, user_errors
from exchange.envelope.model import Kind
from exchange.transport.names import BusNames

app = typer.Typer(
    help="The service catalog: who provides what, who may call it, and its deadline.",
    invoke_without_command=True,
    pretty_exceptions_show_locals=False,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass(frozen=True)
class Field:
    """One field of a payload, as a contract lists it."""

    path: str
    type: str
    required: bool
    rules: str
    description: str


@app.callback()
def services(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List the catalog's services (EXCHANGE_CATALOG); `exchange services show CODE` for one."""
    if ctx.invoked_subcommand is not None:
        return
    catalog = _catalog()
    if as_json:
        print_json([_summary(catalog, service) for service in catalog.services])
        return
    table = Table(title=f"Services of catalog {escape(catalog.data.version)}")
    for column in ("code", "version", "title", "provider", "callers", "deadline"):
        table.add_column(column)
    for service in catalog.services:
        table.add_row(
            service.code,
            service.version,
            escape(service.title),
            service.provider,
            ", ".join(sorted(service.callers)),
            deadline_text(service.deadline),
        )
    console(min_width=160).print(table)


@app.command("show")
def show(
    code: Annotated[str, typer.Argument(help="Service code, e.g. tree-felling-permit.")],
    version: Annotated[str | None, typer.Option(help="Contract version (default newest).")] = None,
    as_json: AsJson = False,
) -> None:
    """Print a service's contract: provider, callers, deadline, schema files, payload fields."""
    catalog = _catalog()
    with user_errors():
        service = catalog.service(code, version)
    documents = catalog.schema_documents(service)
    contract = {
        **_summary(catalog, service),
        "schemas": {name: str(path) for name, path in catalog.schema_files(service).items()},
        "request": [asdict(f) for f in payload_fields(documents[Kind.REQUEST])],
        "response": [asdict(f) for f in payload_fields(documents[Kind.RESPONSE])],
    }
    if as_json:
        print_json(contract)
        return
    out = console(min_width=160)
    names = {party.id: party.name for party in catalog.parties}
    out.print(f"[bold]{service.code}[/bold] {service.version}: {escape(service.title)}")
    out.print(f"provider   {service.provider} ({escape(names[service.provider])})")
    callers = ", ".join(f"{p} ({escape(names[p])})" for p in sorted(service.callers))
    out.print(f"callers    {callers}")
    out.print(f"deadline   {deadline_text(service.deadline)}")
    for path in contract["schemas"].values():
        out.print(f"schema     {escape(path)}")
    for kind in (Kind.REQUEST, Kind.RESPONSE):
        table = Table(title=f"{kind.value} payload")
        for column in ("field", "type", "required", "rules", "description"):
            table.add_column(column)
        for field in payload_fields(documents[kind]):
            table.add_row(
                escape(field.path),
                field.type,
                "yes" if field.required else "",
                escape(field.rules),
                escape(field.description),
            )
        out.print(table)


def deadline_text(deadline: Deadline) -> str:
    """``14 calendar days`` or ``20 working days``."""
    unit = "working" if deadline.working_days else "calendar"
    return f"{deadline.days} {unit} day{'s' if deadline.days != 1 else ''}"


def payload_fields(document: Mapping[str, Any]) -> list[Field]:
    """Every field of a payload's JSON Schema, depth first, in the schema's (XSD's) order."""
    return list(_walk(document, document, ""))


def _walk(schema: Mapping[str, Any], root: Mapping[str, Any], prefix: str) -> Iterator[Field]:
    required = set(schema.get("required", ()))
    for name, raw in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        field_schema = resolve_ref(raw, root)
        item = field_schema
        listed = field_schema.get("type") == "array"
        if listed:
            item = resolve_ref(field_schema.get("items", {}), root)
            path += "[]"
        rules = _rules(item)
        if listed:
            rules = "; ".join(filter(None, (_items_rule(field_schema), rules)))
        kind = str(item.get("format") or item.get("type", "string" if "enum" in item else "any"))
        yield Field(
            path,
            f"list of {kind}" if listed else kind,
            name in required,
            rules,
            str(raw.get("description", field_schema.get("description", ""))),
        )
        if item.get("type") == "object":
            yield from _walk(item, root, path + ".")


def _items_rule(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is None and high is None:
        return ""
    return f"{low if low is not None else 0}..{high if high is not None else ''} items"


def _rules(schema: Mapping[str, Any]) -> str:
    rules: list[str] = []
    if "enum" in schema:
        rules.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "pattern" in schema and "format" not in schema:
        rules.append(f"pattern {schema['pattern']}")
    for low, high, unit in (("minimum", "maximum", ""), ("minLength", "maxLength", " chars")):
        if low in schema or high in schema:
            rules.append(f"{schema.get(low, '')}..{schema.get(high, '')}{unit}")
    return "; ".join(rules)


def _summary(catalog: Catalog, service: Service) -> dict[str, Any]:
    return {
        "code": service.code,
        "version": service.version,
        "title": service.title,
        "provider": service.provider,
        "callers": sorted(service.callers),
        "deadline": {
            "days": service.deadline.days,
            "working_days": service.deadline.working_days,
            "text": deadline_text(service.deadline),
        },
        "schemas_dir": str(catalog.schemas_dir / service.schemas),
    }


def _catalog() -> Catalog:
    current = load_settings()
    with user_errors():
        return Catalog.load(current.catalog, current.schemas_dir)


@app.command("asyncapi")
def asyncapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    output_format: Annotated[
        str,
        typer.Option("--format", help="yaml or json (default: from --output's suffix, else yaml)."),
    ] = "",
) -> None:
    """The bus as an AsyncAPI 3.0 document: channels, message kinds, payload schemas."""
    settings = load_settings()
    catalog = _catalog()
    chosen = output_format or ("json" if output and output.suffix == ".json" else "yaml")
    if chosen not in ("yaml", "json"):
        raise fail("config-error", f"--format {chosen!r}: give yaml or json")
    with user_errors():
        document = asyncapi_document(
            catalog, BusNames(settings.bus_prefix), broker_url=settings.amqp_url
        )
    if chosen == "json":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    if output is None:
        typer.echo(text, nl=False)
        return
    with user_errors():
        output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)
