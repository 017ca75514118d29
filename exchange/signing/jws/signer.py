"""Seal an envelope as a JWS in flattened JSON serialization, the chain in ``x5c``."""

from __future__ import annotations

import base64
import json

from exchange._hazmat import signature
from exchange.codec.json import encode_json
from exchange.envelope.model import Envelope
from exchange.pki.credentials import Credentials
from exchange.signing.jws import _b64url
from exchange.signing.jws.profile import CONTENT_TYPE


def sign_jws(envelope: Envelope, credentials: Credentials) -> bytes:
    """Return the flattened JWS of ``envelope``."""
    header = {
        "alg": credentials.algorithm.value,
        "cty": CONTENT_TYPE,
        "x5c": [base64.b64encode(credentials.certificate_der).decode("ascii")],
    }
    protected = _b64url.encode(json.dumps(header, separators=(",", ":")).encode())
    payload = _b64url.encode(encode_json(envelope))
    value = signature.sign(credentials.key, f"{protected}.{payload}".encode("ascii"))
    jws = {"protected": protected, "payload": payload, "signature": _b64url.encode(value)}
    return json.dumps(jws, separators=(",", ":")).encode()
