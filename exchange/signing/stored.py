"""Reading back envelopes this node verified before it stored them.

The party's store only ever holds wire bytes that passed ``unseal`` (or that this node
signed), so reading them back needs no second trust decision, which could not be made
anyway once the signer's certificate has expired. Never use this on bytes from the wire.
"""

from __future__ import annotations

from exchange._hazmat.xml import parse
from exchange.codec import b64url
from exchange.codec.json import decode_json, loads_strict
from exchange.codec.xml import decode_xml
from exchange.envelope.model import Envelope
from exchange.exceptions import ContentPruned, Malformed
from exchange.signing.base import WireFormat, sniff_format
from exchange.signing.xmldsig.profile import DS

_STORED_LIMIT = 64 * 1024 * 1024


def decode_stored(wire: bytes) -> Envelope:
    """The envelope inside signed wire bytes taken from the party's own store.

    Raises:
        ContentPruned (content-pruned): the store no longer keeps this message's content.
        Malformed (malformed): the bytes are not a signed envelope of ours.
    """
    if not wire:
        raise ContentPruned("the content of this message was pruned; its digest remains")
    if sniff_format(wire) is WireFormat.JSON:
        jws = loads_strict(wire)
        if not isinstance(jws, dict) or not isinstance(jws.get("payload"), str):
            raise Malformed("stored JSON is not a JWS")
        return decode_json(b64url.decode(jws["payload"], "payload"))
    root = parse(wire, max_size=_STORED_LIMIT)
    for signature in root.findall(DS + "Signature"):
        root.remove(signature)
    return decode_xml(root)
