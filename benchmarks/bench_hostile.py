"""What hostile input costs the verifier, beside a valid envelope of the same size, in one run.

Each hostile shape is built up to the size limit (1 MiB) and handed to ``unseal``; its time
(median of several runs, until it raises) is printed as a ratio to the time of verifying a
valid signed envelope of about that size whose payload is elements of about 20 bytes each,
in the same format. Target: at most 3x for every shape. No assertion (timings are noisy).
Run with ``.venv/bin/python benchmarks/bench_hostile.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from exchange._clock import FrozenClock
from exchange.codec import b64url
from exchange.exceptions import ExchangeError
from exchange.signing import WireFormat, seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope

LIMIT = 1024 * 1024
TARGET = 3.0
RUNS = 7


def _valid(pki: ThrowawayPKI, clock: FrozenClock, wire: WireFormat) -> bytes:
    """A valid envelope just under the limit: ~20-byte payload elements (``<s>bb</s>``...)."""
    credentials = pki.credentials("single-center")
    items = 1000
    while True:
        envelope = make_envelope(clock, payload={"trees": [{"s": "bbbbbbbb"}] * items})
        raw = seal(envelope, credentials, wire)
        if len(raw) > LIMIT * 0.95:
            return raw
        items = int(items * LIMIT * 0.97 / len(raw))


def _fill(raw: bytes, marker: bytes, unit: Callable[[int], bytes], *, after: bool = True) -> bytes:
    """Insert ``unit(i)`` pieces at ``marker`` until the document is at the limit."""
    at = raw.index(marker) + (len(marker) if after else 0)
    pieces: list[bytes] = []
    room = LIMIT - len(raw)
    i = 0
    while room > 0:
        piece = unit(i)
        room -= len(piece)
        if room < 0:
            break
        pieces.append(piece)
        i += 1
    return raw[:at] + b"".join(pieces) + raw[at:]


def xml_shapes(small: bytes) -> Iterator[tuple[str, bytes]]:
    """Hostile XML shapes, each about LIMIT bytes, on a small signed envelope."""
    root = b'<envelope xmlns="urn:kazan:exchange:envelope:1"'
    yield (
        "namespace declarations on the root",
        _fill(small, root, lambda i: b' xmlns:p%d="urn:x:%d"' % (i, i)),
    )
    yield (
        "namespace declarations on SignedInfo",
        _fill(small, b"<ds:SignedInfo", lambda i: b' xmlns:p%d="urn:x:%d"' % (i, i)),
    )
    yield "attributes on one element", _fill(small, root, lambda i: b' a%d="v"' % i)
    depth = (LIMIT - len(small)) // 8
    yield (
        "deep nesting",
        small.replace(b"<payload>", b"<payload>" + b"<a>" * depth + b"</a>" * depth),
    )
    name = b"n" * ((LIMIT - len(small)) // 2 - 8)
    yield (
        "a long element name",
        small.replace(b"<payload>", b"<payload><" + name + b"></" + name + b">"),
    )
    yield "many small elements", _fill(small, b"<payload>", lambda i: b"<a/>")
    declarations = b" ".join(b'xmlns:p%d="urn:x:%d"' % (j, j) for j in range(16))
    yield (
        "16 namespace declarations per element",
        _fill(small, b"<payload>", lambda i: b"<a " + declarations + b"/>"),
    )
    attributes = b" ".join(b'a%d="v"' % j for j in range(32))
    yield (
        "32 attributes per element",
        _fill(small, b"<payload>", lambda i: b"<a " + attributes + b"/>"),
    )
    yield (
        "nesting 31 deep, repeated",
        _fill(small, b"<payload>", lambda i: b"<a>" * 29 + b"</a>" * 29),
    )
    yield "64 namespaces in scope of many elements", _namespaces_in_scope(small)
    uri = b"urn:" + b"u" * 60_000
    yield (
        "long namespace URIs",
        _fill(small, root, lambda i: b' xmlns:p%d="%s"' % (i, uri)),
    )
    start = small.index(b"<ds:X509Certificate>") + len(b"<ds:X509Certificate>")
    end = small.index(b"</ds:X509Certificate>")
    blob = base64.b64encode(b"\x30" * ((LIMIT - len(small)) * 3 // 4))
    yield "a large KeyInfo certificate", small[:start] + blob + small[end:]


def _namespaces_in_scope(small: bytes) -> bytes:
    """Every namespace declaration the limits allow, in scope of a payload of tiny elements.

    Just within every limit, so the whole verification runs: c14n's cost per element grows
    with the namespaces in scope, and this is the most it can be.
    """
    room = 64 - small.count(b"xmlns")  # the envelope, ds and service namespaces are there
    sizes = [15, 16, 16]
    sizes.append(room - sum(sizes))

    def declarations(k: int) -> bytes:
        return b" ".join(b'xmlns:q%d_%d="urn:q:%d:%d"' % (k, j, k, j) for j in range(sizes[k]))

    root = b'<envelope xmlns="urn:kazan:exchange:envelope:1"'
    raw = small.replace(root, root + b" " + declarations(0), 1)
    inner = b"<payload " + declarations(1) + b"><b " + declarations(2) + b">"
    holder = b"<c " + declarations(3) + b">"
    raw = raw.replace(b"<payload>", inner + holder, 1).replace(b"</payload>", b"</c></b></payload>")
    return _fill(raw, holder, lambda i: b"<a>bbbbbb</a>")


def jws_shapes(small: bytes) -> Iterator[tuple[str, bytes]]:
    """Hostile JWS shapes, each about LIMIT bytes, on a small signed envelope."""
    doc = json.loads(small)
    header = json.loads(b64url.decode(doc["protected"], "protected"))
    first = header["x5c"][0]

    def with_header(**members: object) -> bytes:
        encoded = b64url.encode(json.dumps(header | members).encode())
        return json.dumps(doc | {"protected": encoded}).encode()

    room = (LIMIT - len(small)) * 3 // 4
    yield "many x5c entries", with_header(x5c=[first] * (room // (len(first) + 3)))
    yield (
        "a large x5c certificate",
        with_header(x5c=[base64.b64encode(b"\x30" * (room * 3 // 4)).decode()]),
    )
    yield "a long header member", with_header(cty="a" * room)
    nested = "[" * (room // 2) + "]" * (room // 2)
    payload = b64url.encode(b'{"a":' + nested.encode() + b"}")
    yield "deeply nested payload JSON", json.dumps(doc | {"payload": payload}).encode()


def _time(raw: bytes, verify: Callable[[bytes], object]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        with contextlib.suppress(ExchangeError):
            verify(raw)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print each shape's verify time as a ratio to a valid envelope's of the same size."""
    clock = FrozenClock()
    with tempfile.TemporaryDirectory() as scratch:
        pki = ThrowawayPKI.create(Path(scratch), clock=clock)
        trust = pki.trust()

        def verify(raw: bytes) -> object:
            return unseal(raw, trust, clock=clock, max_size=LIMIT)

        worst = 0.0
        for wire, shapes in ((WireFormat.XML, xml_shapes), (WireFormat.JSON, jws_shapes)):
            valid = _valid(pki, clock, wire)
            base = _time(valid, verify)
            print(f"{wire.value}: valid envelope of {len(valid)} bytes: {base * 1e3:.1f} ms")
            credentials = pki.credentials("single-center")
            small = seal(make_envelope(clock), credentials, wire)
            for name, raw in shapes(small):
                took = _time(raw, verify)
                ratio = took / base
                worst = max(worst, ratio)
                mark = "ok" if ratio <= TARGET else "OVER"
                print(
                    f"  {name:<40} {len(raw):>8} bytes {took * 1e3:8.1f} ms"
                    f"  ratio {ratio:5.2f} (target <= {TARGET:.0f}) {mark}"
                )
        print(f"worst ratio {worst:.2f} (target <= {TARGET:.0f})")


if __name__ == "__main__":
    main()
