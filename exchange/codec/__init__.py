"""Wire formats of the envelope: XML (``codec.xml``) and JSON (``codec.json``), same fields."""

from exchange.codec.json import decode_json, encode_json
from exchange.codec.xml import ENVELOPE_NS, decode_xml, encode_xml

__all__ = ["ENVELOPE_NS", "decode_json", "decode_xml", "encode_json", "encode_xml"]
