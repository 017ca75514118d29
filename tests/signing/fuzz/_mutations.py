"""Structure-aware mutations of valid signed envelopes, as plain data (so ``@example`` works).

Each mutation changes one thing a verifier reads (a header member, a certificate, a
namespace declaration, an algorithm URI, an encoding, a length) and, where it helps reach
deeper checks, signs the result again with the genuine key: an insider's forgery.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from exchange.signing.jws.profile import CONTENT_TYPE
from tests.signing.fuzz._material import Material
from tests.signing.jws._forge import b64url, forge, header_for, parts, unb64url
from tests.signing.xmldsig._forge import resign, resign_signed_info, tree

JSON = Any


# --- JWS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """Set (or with ``drop``, remove) one protected header member; optionally re-sign."""

    name: str
    value: JSON = None
    drop: bool = False
    resign: bool = True

    def apply(self, m: Material) -> bytes:
        """The mutated JWS."""
        header = header_for(m.signer)
        if self.drop:
            header.pop(self.name, None)
        else:
            header[self.name] = self.value
        return _with_header(m, header, self.resign)


@dataclass(frozen=True)
class X5c:
    """x5c made of named certificates (``cert:<name>``) or raw JSON values."""

    entries: tuple[JSON, ...]
    resign: bool = True

    def apply(self, m: Material) -> bytes:
        """The mutated JWS."""
        chain = [
            m.certificate_b64(e[5:]) if isinstance(e, str) and e.startswith("cert:") else e
            for e in self.entries
        ]
        return _with_header(m, header_for(m.signer, x5c=chain), self.resign)


@dataclass(frozen=True)
class Member:
    """A top-level JWS member set to any JSON value (or dropped, or an extra one added)."""

    name: str
    value: JSON = None
    drop: bool = False

    def apply(self, m: Material) -> bytes:
        """The mutated JWS."""
        jws: dict[str, JSON] = dict(parts(m.jws))
        if self.drop:
            jws.pop(self.name, None)
        else:
            jws[self.name] = self.value
        return json.dumps(jws, ensure_ascii=False).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Payload:
    """One envelope field set to any JSON value, signed with the genuine key."""

    name: str
    value: JSON = None

    def apply(self, m: Material) -> bytes:
        """The mutated JWS."""
        envelope = json.loads(unb64url(parts(m.jws)["payload"]))
        envelope[self.name] = self.value
        body = json.dumps(envelope, ensure_ascii=False).encode("utf-8", "surrogatepass")
        return forge(m.signer, body, header_for(m.signer))


def _with_header(m: Material, header: dict[str, JSON], sign: bool) -> bytes:
    payload = unb64url(parts(m.jws)["payload"])
    if sign:
        return forge(m.signer, payload, header)
    jws = dict(parts(m.jws))
    jws["protected"] = b64url(json.dumps(header).encode())
    return json.dumps(jws).encode()


# --- XML --------------------------------------------------------------------------------

# Start tags a namespace declaration or an attribute can be put on.
XML_PLACES = {
    "root": b"<envelope",
    "payload": b"<s:request",
    "payload-leaf": b"<s:name",
    "signature": b"<ds:Signature",
    "signed-info": b"<ds:SignedInfo",
    "c14n-method": b"<ds:CanonicalizationMethod",
    "reference": b"<ds:Reference",
    "transform": b"<ds:Transform ",
    "digest-method": b"<ds:DigestMethod",
    "key-info": b"<ds:KeyInfo",
}
_IN_SIGNED_INFO = {"signed-info", "c14n-method", "reference", "transform", "digest-method"}


@dataclass(frozen=True)
class XmlAttribute:
    """An attribute or namespace declaration (``xmlns:p`` / ``xmlns``) put on a start tag.

    Re-signed where it lands (document or SignedInfo), so only the verifier's own rules
    (and canonicalisation) can refuse it.
    """

    place: str
    name: str
    value: str
    resign: bool = True

    def apply(self, m: Material) -> bytes:
        """The mutated document."""
        tag = XML_PLACES[self.place]
        quoted = self.value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        attribute = f'{self.name}="{quoted}"'
        # "<ds:Transform " ends in a blank already (it tells Transform from Transforms).
        attribute = f"{attribute} " if tag.endswith(b" ") else f" {attribute}"
        raw = m.xml.replace(tag, tag + attribute.encode("utf-8", "surrogatepass"), 1)
        return _resigned(m, raw, self.place) if self.resign else raw


@dataclass(frozen=True)
class XmlChild:
    """Markup (an element, text, a comment) put as the first child of a start tag's element."""

    place: str
    markup: str
    resign: bool = True

    def apply(self, m: Material) -> bytes:
        """The mutated document."""
        tag = XML_PLACES[self.place]
        start = m.xml.index(tag)
        end = m.xml.index(b">", start)
        head = m.xml[start:end]
        markup = self.markup.encode("utf-8", "surrogatepass")
        if head.endswith(b"/"):  # an empty element: open it
            name = tag[1:].split(b" ")[0]
            raw = m.xml[: end - 1] + b">" + markup + b"</" + name + b">" + m.xml[end + 1 :]
        else:
            raw = m.xml[: end + 1] + markup + m.xml[end + 1 :]
        return _resigned(m, raw, self.place) if self.resign else raw


@dataclass(frozen=True)
class XmlText:
    """The text of an element (by its tag, as written) replaced."""

    tag: str
    text: str
    resign: bool = False

    def apply(self, m: Material) -> bytes:
        """The mutated document."""
        pattern = re.compile(
            rb"(<" + re.escape(self.tag.encode()) + rb"(?: [^>]*)?>)([^<]*)(</)", re.DOTALL
        )
        text = self.text.encode("utf-8", "surrogatepass")
        raw = pattern.sub(lambda match: match[1] + text + match[3], m.xml, count=1)
        return _resigned(m, raw, "root") if self.resign else raw


@dataclass(frozen=True)
class KeyInfo:
    """The X509Data holding the named certificates (or raw texts), one element each."""

    entries: tuple[str, ...]

    def apply(self, m: Material) -> bytes:
        """The mutated document."""
        items = b"".join(
            b"<ds:X509Certificate>"
            + (m.certificate_b64(e[5:]) if e.startswith("cert:") else e).encode("utf-8", "replace")
            + b"</ds:X509Certificate>"
            for e in self.entries
        )
        return re.sub(
            rb"<ds:X509Data>.*</ds:X509Data>",
            lambda _: b"<ds:X509Data>" + items + b"</ds:X509Data>",
            m.xml,
            flags=re.DOTALL,
        )


def _resigned(m: Material, raw: bytes, place: str) -> bytes:
    # Our test forgers use plain lxml and c14n: an input they cannot handle is still a
    # fine input for the verifier, just without a genuine signature.
    try:
        root = tree(raw)
        if place in _IN_SIGNED_INFO:
            return resign_signed_info(root, m.signer)
        return resign(root, m.signer)
    except Exception:
        return raw


# --- either format: encodings and lengths -----------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """The document re-encoded (UTF-16, UTF-32, Latin-1, with or without a BOM), or its
    XML declaration claiming another encoding."""

    xml: bool
    codec: str
    declare: str | None = None

    def apply(self, m: Material) -> bytes:
        """The mutated document."""
        raw = m.xml if self.xml else m.jws
        if self.declare is not None and self.xml:
            raw = raw.replace(b"encoding='UTF-8'", f"encoding='{self.declare}'".encode(), 1)
        return raw.decode("utf-8").encode(self.codec, "replace")


@dataclass(frozen=True)
class Splice:
    """Bytes cut, repeated or inserted at a relative position (lengths, truncation)."""

    xml: bool
    at: float  # 0..1 of the length
    cut: int = 0
    insert: bytes = b""
    repeat: int = 0  # the cut bytes put back this many times

    def apply(self, m: Material) -> bytes:
        """The mutated document."""
        raw = m.xml if self.xml else m.jws
        i = int(self.at * len(raw))
        taken = raw[i : i + self.cut]
        return raw[:i] + self.insert + taken * self.repeat + raw[i + self.cut :]


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


__all__ = [
    "CONTENT_TYPE",
    "XML_PLACES",
    "Encoding",
    "Header",
    "KeyInfo",
    "Member",
    "Payload",
    "Splice",
    "X5c",
    "XmlAttribute",
    "XmlChild",
    "XmlText",
    "b64",
]
