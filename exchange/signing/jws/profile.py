"""The JWS profile: flattened JSON serialization, a protected header we fully understand."""

from __future__ import annotations

from exchange._hazmat.signature import Algorithm

ALGORITHMS = {algorithm.value: algorithm for algorithm in Algorithm}
CONTENT_TYPE = "application/vnd.kazan.envelope+json"
MEMBERS = frozenset({"protected", "payload", "signature"})
# Anything else (jwk, jku, x5u, kid, crit, b64, ...) would move trust or meaning elsewhere.
HEADER_PARAMETERS = frozenset({"alg", "x5c", "cty", "typ"})
# Exactly the signer's certificate: the trust store holds the root, and entries nobody checks
# would be bytes an attacker controls inside what we call verified.
X5C_LENGTH = 1

# Signed documents that are not envelopes carry their own ``typ``, so none can pass for another.
AUDIT_BATCH_TYPE = "kzn-audit-batch+jws"
AUDIT_ACK_TYPE = "kzn-audit-ack+jws"
ADMIN_COMMAND_TYPE = "kzn-admin-command+jws"
DOCUMENT_TYPES = frozenset({AUDIT_BATCH_TYPE, AUDIT_ACK_TYPE, ADMIN_COMMAND_TYPE})
# Each kind of signed document names its content type (``cty``); envelopes carry no ``typ``.
CONTENT_TYPES: dict[str | None, str] = {
    None: CONTENT_TYPE,
    AUDIT_BATCH_TYPE: "application/vnd.kazan.audit-batch+json",
    AUDIT_ACK_TYPE: "application/vnd.kazan.audit-ack+json",
    ADMIN_COMMAND_TYPE: "application/vnd.kazan.admin-command+json",
}
