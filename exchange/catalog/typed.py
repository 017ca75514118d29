"""Typed payloads: the one shape a handler sees, whichever wire format carried the payload.

XML has no types, and the codec cannot tell a one-item list from a scalar: an XML payload
decodes to strings, with ``[x]`` read back as ``x``. :func:`typed_value` walks the service's
JSON Schema and gives the value the shape a JSON envelope carries: integers and booleans
from their XML text, a list where the schema says array, objects' keys in the schema's order
(the order the XSD's sequences want). A value already in that shape is returned as it is,
so the same function serves XML-decoded payloads, JSON payloads and what senders pass in.

Understood keywords: ``type`` (one type), ``properties``, ``items``, ``enum`` and ``const``
(when ``type`` is absent), ``format`` (``date``, ``date-time``) and local ``$ref``. Anything a
value cannot be turned into is left alone, for the schema check to name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_INTEGER = re.compile(r"[+-]?[0-9]{1,4000}")
# XML whitespace, which XSD collapses around the values of its non-string types.
_XML_SPACE = " \t\r\n"
_COLLAPSED_FORMATS = frozenset({"date", "date-time", "time"})
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_MAX_REF_HOPS = 32

Schema = Mapping[str, Any]


def typed_value(value: Any, schema: Schema, root: Schema) -> Any:
    """``value`` in the shape ``schema`` describes (``root`` resolves ``$ref``).

    Never raises for data: what does not fit is returned unchanged.
    """
    schema = resolve_ref(schema, root)
    kind = _type_of(schema)
    if kind == "array":
        items = schema.get("items", {})
        return [typed_value(item, items, root) for item in _as_list(value)]
    if kind == "object":
        return _typed_object({} if value == "" else value, schema, root)
    if kind == "integer":
        return _integer(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "string":
        return _string(value, schema)
    return value


def _typed_object(value: Any, schema: Schema, root: Schema) -> Any:
    if not isinstance(value, dict):
        return value
    properties: Mapping[str, Any] = schema.get("properties", {})
    shaped = {
        key: typed_value(value[key], properties[key], root) for key in properties if key in value
    }
    shaped.update((key, item) for key, item in value.items() if key not in properties)
    return shaped


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _integer(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip(_XML_SPACE)
        if _INTEGER.fullmatch(text):
            try:
                return int(text)
            except ValueError:  # beyond Python's digit limit: leave it for the schema
                return value
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        return _BOOLEANS.get(value.strip(_XML_SPACE), value)
    return value


def _string(value: Any, schema: Schema) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and schema.get("format") in _COLLAPSED_FORMATS:
        return value.strip(_XML_SPACE)
    return value


def _type_of(schema: Schema) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list):
        concrete = [name for name in declared if name != "null"]
        return concrete[0] if len(concrete) == 1 else None
    values = schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else []
    kinds = {_json_type(v) for v in values}
    return kinds.pop() if len(kinds) == 1 else None


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    return None


def resolve_ref(schema: Schema, root: Schema) -> Schema:
    """``schema`` with its local ``$ref`` (``#/$defs/Name``) followed.

    Keywords beside a ``$ref`` win over its target's; a ``$ref`` elsewhere is left as it is.
    """
    for _ in range(_MAX_REF_HOPS):
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return schema
        target: Any = root
        for part in (p for p in ref[1:].split("/") if p):
            key = part.replace("~1", "/").replace("~0", "~")
            target = target.get(key, {}) if isinstance(target, Mapping) else {}
        siblings = {key: item for key, item in schema.items() if key != "$ref"}
        schema = {**(target if isinstance(target, Mapping) else {}), **siblings}
    return schema
