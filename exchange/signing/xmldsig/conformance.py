"""Hold a ``ds:Signature`` element against the profile's declarative shape, all the way down."""

from __future__ import annotations

from exchange._hazmat.xml import Element
from exchange.exceptions import SignatureInvalid, UnsupportedAlgorithm
from exchange.signing.xmldsig.profile import ALGORITHM, ALGORITHMS, DS, SIGNATURE, Shape

_XML_WHITESPACE = " \t\r\n"


def check_profile(sig: Element) -> dict[str, Element]:
    """Check ``sig`` against ``SIGNATURE``; return its elements by local name.

    Algorithms are checked first, anywhere in the signature, so that an off-list algorithm
    is always reported as such, however the rest is shaped.

    Raises:
        UnsupportedAlgorithm (unsupported-algorithm): an algorithm missing, off the list, or
            in the wrong place (transforms out of order).
        SignatureInvalid (signature-invalid): any element, attribute or text the profile does
            not name, or one it names missing.
    """
    for node in sig.iter():
        name = _local(node)
        if name in ALGORITHMS and node.get(ALGORITHM, "") not in ALGORITHMS[name]:
            raise UnsupportedAlgorithm(
                f"ds:{name} algorithm {node.get(ALGORITHM, '')!r} is not allowed"
            )
    found: dict[str, Element] = {}
    _match(sig, SIGNATURE, found)
    return found


def _local(node: Element) -> str | None:
    tag = node.tag
    return tag[len(DS) :] if isinstance(tag, str) and tag.startswith(DS) else None


def _match(node: Element, shape: Shape, found: dict[str, Element]) -> None:
    found[shape.name] = node
    _attributes(node, shape)
    children = list(node)
    expected = [DS + child.name for child in shape.children]
    if [child.tag for child in children] != expected:
        held = ", ".join(str(child.tag).replace(DS, "ds:") for child in children) or "nothing"
        wanted = ", ".join(child.name for child in shape.children) or "text only"
        raise SignatureInvalid(f"ds:{shape.name} must hold {wanted}; found {held}")
    if not shape.text and (node.text or "").strip(_XML_WHITESPACE):
        raise SignatureInvalid(f"stray text in ds:{shape.name}")
    for child, child_shape in zip(children, shape.children, strict=True):
        if (child.tail or "").strip(_XML_WHITESPACE):
            raise SignatureInvalid(f"stray text after ds:{child_shape.name}")
        _match(child, child_shape, found)


def _attributes(node: Element, shape: Shape) -> None:
    extra = sorted(set(node.attrib) - set(shape.attributes))
    if extra:
        raise SignatureInvalid(f"unexpected attribute {extra[0]!r} on ds:{shape.name}")
    for name, allowed in shape.attributes.items():
        value = node.get(name)
        if value in allowed:
            continue
        if name == ALGORITHM:  # allowed here and there, but not at this place
            raise UnsupportedAlgorithm(
                f"ds:{shape.name} algorithm {value!r} is not allowed here: the transforms "
                "must be enveloped-signature then exclusive c14n"
            )
        wanted = " or ".join(f'{name}="{v}"' for v in sorted(allowed))
        raise SignatureInvalid(f"ds:{shape.name} must carry {wanted}, not {value!r}")
