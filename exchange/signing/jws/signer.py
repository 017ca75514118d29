"""Seal an envelope as a JWS in flattened JSON serialization, the chain in ``x5c``."""

from __future__ import annotations

import base64
import json
from functools import lru_cache

from exchange._hazmat import signature
from exchange._hazmat.signature import Algorithm
from exchange.codec import b64url
from exchange.codec.json import encode_json
from exchange.envelope.model import Envelope
from exchange.pki.credentials import Credentials
from exchange.signing.jws.profile import CONTENT_TYPE


@lru_cache(maxsize=64)
def _protected_header(
    algorithm: Algorithm, certificate_der: bytes, cty: str, typ: str | None = None
) -> str:
    header = {
        "alg": algorithm.value,
        "cty": cty,
        **({"typ": typ} if typ is not None else {}),
        "x5c": [base64.b64encode(certificate_der).decode("ascii")],
    }
    return b64url.encode(json.dumps(header, separators=(",", ":")).encode())


def sign_jws(envelope: Envelope, credentials: Credentials) -> bytes:
    """Return the flattened JWS of ``envelope``."""
    return _sign(encode_json(envelope), credentials, CONTENT_TYPE, None)


def sign_document(payload: bytes, credentials: Credentials, typ: str, cty: str) -> bytes:
    """Return the flattened JWS of a signed document that is not an envelope (its own ``typ``)."""
    return _sign(payload, credentials, cty, typ)


def _sign(payload_bytes: bytes, credentials: Credentials, cty: str, typ: str | None) -> bytes:
    protected = _protected_header(credentials.algorithm, credentials.certificate_der, cty, typ)
    payload = b64url.encode(payload_bytes)
    value = signature.sign(credentials.key, f"{protected}.{payload}".encode("ascii"))
    # base64url needs no JSON escaping, so the flattened form can be written directly.
    return (
        f'{{"protected":"{protected}","payload":"{payload}","signature":"{b64url.encode(value)}"}}'
    ).encode("ascii")
