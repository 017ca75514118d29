"""Build JWS documents by hand, on- and off-profile, for the verifier's tests."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

from exchange._hazmat import signature
from exchange.codec.json import encode_json
from exchange.envelope.model import Envelope
from exchange.pki.credentials import Credentials
from exchange.signing.jws.profile import CONTENT_TYPE

__all__ = ["ALPHABET", "b64url", "compact", "forge", "header_for", "parts", "respelled", "unb64url"]

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def respelled(text: str, bit: int) -> str:
    """``text`` with ``bit`` of its last base64url character flipped."""
    return text[:-1] + ALPHABET[ALPHABET.index(text[-1]) ^ (1 << bit)]


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_for(credentials: Credentials, **extra: Any) -> dict[str, Any]:
    """The protected header our signer writes, with ``extra`` parameters merged in."""
    header: dict[str, Any] = {
        "alg": credentials.algorithm.value,
        "cty": CONTENT_TYPE,
        "x5c": [base64.b64encode(credentials.certificate_der).decode("ascii")],
    }
    header.update(extra)
    return header


def forge(
    credentials: Credentials,
    payload: Envelope | bytes,
    header: dict[str, Any] | None = None,
    *,
    protected: str | None = None,
    body: str | None = None,
) -> bytes:
    """A flattened JWS over ``payload`` with ``header``, properly signed by ``credentials``."""
    if protected is None:
        protected = b64url(json.dumps(header or header_for(credentials)).encode())
    raw = payload if isinstance(payload, bytes) else encode_json(payload)
    if body is None:
        body = b64url(raw)
    value = signature.sign(credentials.key, f"{protected}.{body}".encode("ascii"))
    jws = {"protected": protected, "payload": body, "signature": b64url(value)}
    return json.dumps(jws).encode()


def parts(raw: bytes) -> dict[str, str]:
    """The members of a flattened JWS."""
    members: dict[str, str] = json.loads(raw)
    return members


def compact(raw: bytes) -> bytes:
    """The same JWS in compact serialization."""
    members = parts(raw)
    return f"{members['protected']}.{members['payload']}.{members['signature']}".encode()
