"""The JWS profile: flattened JSON serialization, a protected header we fully understand."""

from __future__ import annotations

from exchange._hazmat.signature import Algorithm

ALGORITHMS = {algorithm.value: algorithm for algorithm in Algorithm}
CONTENT_TYPE = "application/vnd.kazan.envelope+json"
MEMBERS = frozenset({"protected", "payload", "signature"})
# Anything else (jwk, jku, x5u, kid, crit, b64, ...) would move trust or meaning elsewhere.
HEADER_PARAMETERS = frozenset({"alg", "x5c", "cty", "typ"})
MAX_CHAIN = 4
