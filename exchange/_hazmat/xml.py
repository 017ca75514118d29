"""The only module that touches ``lxml.etree``: a hardened parser and exclusive c14n."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from exchange.exceptions import Malformed, TooLarge

if TYPE_CHECKING:
    from lxml.etree import _Element as Element
else:
    Element = etree._Element

__all__ = [
    "Element",
    "XMLSchema",
    "c14n_exclusive",
    "element",
    "load_schema",
    "parse",
    "schema_violation",
    "schema_violations",
    "serialize",
    "sub_element",
]

XMLSchema = etree.XMLSchema

# Before parsing at all: a DOCTYPE is the door to XXE, external DTDs and entity bombs.
_FORBIDDEN_MARKUP = re.compile(rb"<!DOCTYPE|<!ENTITY|<!ELEMENT|<!ATTLIST", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    remove_blank_text=False,
    collect_ids=False,
)


def parse(raw: bytes, *, max_size: int) -> Element:
    """Parse untrusted bytes into an element tree, or raise.

    Accepts only UTF-8 without DOCTYPE, comments or processing instructions.

    Raises:
        TooLarge (too-large): more than ``max_size`` bytes.
        Malformed (malformed): anything else that is not plain, well-formed UTF-8 XML.
    """
    if len(raw) > max_size:
        raise TooLarge(f"{len(raw)} bytes is over the {max_size}-byte limit", size=len(raw))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"not UTF-8 at byte {exc.start}") from None
    if b"\x00" in raw:  # never legal in XML 1.0; UTF-16/32 without a BOM is full of them
        raise Malformed("NUL byte: not UTF-8 XML")
    declared = _DECLARED_ENCODING.match(raw)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise Malformed(f"declared encoding {declared.group(1).decode()!r} is not UTF-8")
    if _FORBIDDEN_MARKUP.search(raw):
        raise Malformed("DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Malformed(f"not well-formed XML: {exc.msg}") from None
    except (etree.LxmlError, ValueError) as exc:  # whatever else libxml2 refuses
        raise Malformed(f"not acceptable XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # type: ignore[union-attr]
        raise Malformed("DOCTYPE is not allowed")
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        raise Malformed(f"{_node_kind(node)} not allowed inside the document")
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        raise Malformed(f"{_node_kind(sibling)} not allowed outside the root element")
    return root


def _node_kind(node: Element) -> str:
    if isinstance(node, etree._Comment):
        return "comments are"
    if isinstance(node, etree._ProcessingInstruction):
        return "processing instructions are"
    return "entity references are"


def c14n_exclusive(node: Element) -> bytes:
    """Exclusive XML canonicalisation 1.0 without comments, as XML-DSig wants it.

    Raises:
        Malformed (malformed): libxml2 cannot canonicalise the tree (a relative namespace
            URI anywhere in scope, an unparsable one, ...). xmlsec1 refuses those too.
    """
    try:
        return etree.tostring(node, method="c14n", exclusive=True, with_comments=False)
    except (etree.LxmlError, ValueError) as exc:
        raise Malformed(f"cannot canonicalise the document: {exc}") from None


def serialize(root: Element) -> bytes:
    """Serialise a document as UTF-8 with an XML declaration."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def element(tag: str, nsmap: dict[str | None, str] | None = None, **attrib: str) -> Element:
    """Create a detached element."""
    return etree.Element(tag, attrib, nsmap=nsmap)  # type: ignore[arg-type]


def sub_element(
    parent: Element,
    tag: str,
    text: str | None = None,
    nsmap: dict[str | None, str] | None = None,
    **attrib: str,
) -> Element:
    """Append a child element with optional text."""
    child = etree.SubElement(parent, tag, attrib, nsmap=nsmap)  # type: ignore[arg-type]
    if text is not None:
        child.text = text
    return child


def schema_violation(schema: etree.XMLSchema, node: Element) -> tuple[str, str] | None:
    """The first XSD error as (element path, message), or None when ``node`` is valid."""
    if schema.validate(node):
        return None
    error = schema.error_log.last_error  # type: ignore[attr-defined]
    return str(error.path or ""), str(error.message)


def schema_violations(schema: etree.XMLSchema, node: Element) -> list[tuple[str, str]]:
    """Every XSD error as (element path, message), in document order; empty when valid."""
    if schema.validate(node):
        return []
    errors: Any = schema.error_log  # iterable at run time; lxml's stubs do not say so
    return [(str(error.path or ""), str(error.message)) for error in errors]


def load_schema(path: Path) -> etree.XMLSchema:
    """Load one of our own XSD files (trusted, but parsed without network all the same)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser))
