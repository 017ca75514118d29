"""Sign + verify of a ~2 KiB envelope: our XML-DSig and JWS beside signxml, in one run.

Prints microseconds per sign+verify and the ratios; no assertion (timings are noisy here).
Run with ``make bench``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier  # type: ignore[attr-defined]
from signxml.algorithms import CanonicalizationMethod

from exchange._clock import SystemClock
from exchange._hazmat.xml import parse, serialize
from exchange.codec.xml import encode_xml
from exchange.signing import WireFormat, seal, unseal
from exchange.testing import ThrowawayPKI, make_envelope

TARGET_BYTES = 2048
_ECDSA = ec.ECDSA(hashes.SHA256())


def _payload_of_size(target: int) -> dict[str, object]:
    notes = "Felling of an emergency birch near a playground; replanting two lindens. "
    return {
        "applicant": {"name": "Ivan Petrov", "phone": "+7 843 000-00-00"},
        "address": "Kazan, Kremlyovskaya 1",
        "cadastral_number": "16:50:011102:123",
        "trees": [{"species": "birch", "count": "3"}, {"species": "oak", "count": "1"}],
        "notes": (notes * (target // len(notes) + 1))[: max(0, target - 900)],
    }


def _time(label: str, fn: Callable[[], object], rounds: int) -> float:
    for _ in range(rounds // 10):
        fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        samples.append((time.perf_counter() - start) / rounds * 1e6)
    best = min(samples)
    print(f"{label:<34} {best:9.1f} us/op  (median of 5 runs {statistics.median(samples):.1f})")
    return best


def main(rounds: int = 300) -> None:
    """Run the side-by-side benchmark and print the numbers."""
    clock = SystemClock()
    pki = ThrowawayPKI.create(Path(tempfile.mkdtemp()) / "pki", clock=clock)
    credentials = pki.credentials("single-center")
    trust = pki.trust()
    envelope = make_envelope(clock, payload=_payload_of_size(TARGET_BYTES))
    unsigned_xml = serialize(encode_xml(envelope))
    print(
        f"envelope: {len(unsigned_xml)} bytes of unsigned XML, "
        f"{len(seal(envelope, credentials, WireFormat.JSON))} bytes as signed JWS"
    )

    key_pem = credentials.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = credentials.certificate.public_bytes(serialization.Encoding.PEM).decode()
    root_pem = (pki.path / "root.pem").read_bytes()
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    ca_file = pki.path / "root.pem"

    def ours_xml() -> None:
        unseal(seal(envelope, credentials, WireFormat.XML), trust)

    def ours_json() -> None:
        unseal(seal(envelope, credentials, WireFormat.JSON), trust)

    signing_input = seal(envelope, credentials, WireFormat.JSON)
    private_key, public_key = credentials.key, credentials.certificate.public_key()
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)

    def ecdsa_only() -> None:
        # The floor under both formats: one P-256 sign and verify, nothing around it.
        public_key.verify(private_key.sign(signing_input, _ECDSA), signing_input, _ECDSA)

    def theirs_xml() -> None:
        signed = signer.sign(parse(unsigned_xml, max_size=1 << 20), key=key_pem, cert=cert_pem)
        XMLVerifier().verify(serialize(signed), ca_pem_file=str(ca_file))

    assert root_pem
    ours_xml()
    theirs_xml()
    xml = _time("exchange XML-DSig sign+verify", ours_xml, rounds)
    json = _time("exchange JWS sign+verify", ours_json, rounds)
    ref = _time("signxml sign+verify (same XML)", theirs_xml, rounds // 3)
    floor = _time("ECDSA P-256 sign+verify alone", ecdsa_only, rounds)
    print(f"ratio signxml/exchange XML: {ref / xml:.2f}x faster (target >= 2x)")
    print(
        f"JWS sign+verify: {json:.1f} us (target < 150 us), "
        f"of which ECDSA alone {floor:.1f} us; everything else {json - floor:.1f} us"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
