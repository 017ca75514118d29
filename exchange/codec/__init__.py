"""Wire formats: the envelope as XML (``codec.xml``) or JSON (``codec.json``), and base64url.

Both envelope codecs carry the same fields; ``codec.b64url`` is the unpadded base64url that
JWS envelopes, audit batches and stored signatures share.
"""

from exchange.codec.json import decode_json, encode_json
from exchange.codec.xml import ENVELOPE_NS, decode_xml, encode_xml

__all__ = ["ENVELOPE_NS", "decode_json", "decode_xml", "encode_json", "encode_xml"]
