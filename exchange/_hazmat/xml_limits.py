"""Structural limits on a parsed XML document, checked before anything canonicalises it.

Exclusive c14n costs about (namespace declarations in scope) x (elements), so a document
under the size limit can still cost seconds; these limits bound that cost to linear in the
input size. The elements are counted in C (XPath), then one pass with ``iterwalk`` checks
the rest: its ``start-ns`` events report each element's own declarations, where ``nsmap``
would rebuild every in-scope mapping per element (the quadratic cost again).
The values are documented in the README ("Verification limits").
"""

from __future__ import annotations

import re

from lxml import etree  # noqa: TID251 (a read-only walk of a tree parse() made)

from exchange._hazmat.xml import Element
from exchange.exceptions import Malformed, TooComplex

__all__ = [
    "BYTES_PER_ELEMENT",
    "MAX_ATTRIBUTES",
    "MAX_DEPTH",
    "MAX_DOCUMENT_NAMESPACES",
    "MAX_ELEMENT_NAMESPACES",
    "MAX_NAME",
    "MAX_NAMESPACE_URI",
    "MIN_ELEMENTS",
    "check_limits",
    "max_elements",
]

MAX_DEPTH = 32
"""Nesting depth; the root element is at depth 1."""
BYTES_PER_ELEMENT = 8
"""A document of N bytes may hold at most N / 8 elements (``<a/>`` alone is 4 bytes)."""
MIN_ELEMENTS = 64
"""Element budget of a tiny document, so that the rule above never refuses a real one."""
MAX_ATTRIBUTES = 32
"""Attributes on one element (namespace declarations not counted)."""
MAX_ELEMENT_NAMESPACES = 16
"""Namespace declarations on one element."""
MAX_DOCUMENT_NAMESPACES = 64
"""Namespace declarations in the whole document."""
MAX_NAME = 128
"""Characters in the local part of an element or attribute name, and in a namespace prefix."""
MAX_NAMESPACE_URI = 1024
"""Characters in a namespace URI."""

# c14n (libxml2's, so ours and xmlsec1's) refuses relative namespace URIs: say so up front.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def max_elements(size: int) -> int:
    """The element budget of a document of ``size`` bytes."""
    return max(size // BYTES_PER_ELEMENT, MIN_ELEMENTS)


def check_limits(root: Element, size: int) -> None:
    """Check the tree under ``root`` (parsed from ``size`` bytes) against every limit.

    Raises:
        TooComplex (too-complex): a limit is exceeded; the message names it and its value.
        Malformed (malformed): a relative namespace URI, which canonicalisation refuses.
    """
    budget = max_elements(size)
    # Counted in C first: a flood of tiny elements is refused without a Python-level walk.
    elements = root.xpath("count(//*)")
    if not isinstance(elements, float) or elements > budget:
        raise _too_complex(
            f"more elements than a document of {size} bytes may hold (one per "
            f"{BYTES_PER_ELEMENT} bytes)",
            budget,
        )
    depth = declarations = local = 0
    for event, item in etree.iterwalk(root, events=("start", "end", "start-ns")):
        if event == "end":
            depth -= 1
        elif event == "start-ns":
            local += 1
            declarations += 1
            _check_declaration(item, local, declarations)
        else:
            depth += 1
            local = 0
            _check_element(item, depth)


def _too_complex(what: str, limit: int) -> TooComplex:
    # Say which limit and where the limits are written down: the sender has to change.
    return TooComplex(
        f"{what}: the limit is {limit} (see 'Verification limits' in the README)", limit=limit
    )


def _check_declaration(declaration: tuple[str, str], local: int, declarations: int) -> None:
    if local > MAX_ELEMENT_NAMESPACES:
        raise _too_complex(
            "more namespace declarations on one element than allowed", MAX_ELEMENT_NAMESPACES
        )
    if declarations > MAX_DOCUMENT_NAMESPACES:
        raise _too_complex(
            "more namespace declarations in the document than allowed", MAX_DOCUMENT_NAMESPACES
        )
    prefix, uri = declaration
    if len(prefix) > MAX_NAME:
        raise _too_complex(f"namespace prefix of {len(prefix)} characters", MAX_NAME)
    if len(uri) > MAX_NAMESPACE_URI:
        raise _too_complex(f"namespace URI of {len(uri)} characters", MAX_NAMESPACE_URI)
    if uri and not _ABSOLUTE_URI.match(uri):
        raise Malformed(f"relative namespace URI {uri!r}: namespace URIs must be absolute")


def _check_element(node: Element, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _too_complex("elements nested too deep", MAX_DEPTH)
    tag = node.tag
    # A namespace URI was checked at its declaration; only the local name is left to measure.
    if isinstance(tag, str) and len(tag) > MAX_NAME:
        _check_name(tag, "element")
    attrib = node.attrib
    if attrib:
        if len(attrib) > MAX_ATTRIBUTES:
            raise _too_complex(f"{len(attrib)} attributes on one element", MAX_ATTRIBUTES)
        for name in attrib:
            if len(name) > MAX_NAME:
                _check_name(str(name), "attribute")


def _check_name(qualified: str, kind: str) -> None:
    local = qualified.rpartition("}")[2]
    if len(local) > MAX_NAME:
        raise _too_complex(f"{kind} name of {len(local)} characters", MAX_NAME)
