"""A node remembers the highest CRL number in its party's store: an old CRL put back is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exchange._clock import SYSTEM_CLOCK
from exchange.config import Settings
from exchange.exceptions import CertificateRevoked, RevocationUnknown
from exchange.node import build_node
from exchange.node.crl_numbers import META_KEY
from exchange.testing import ThrowawayPKI
from tests.bus.conftest import BUS_PARTIES, FAST

pytestmark = pytest.mark.rabbit


def put_back(path: Path, data: bytes) -> None:
    """Replace crl.pem with older bytes as a copy would (a new file)."""
    temp = path.with_name("crl.pem.old")
    temp.write_bytes(data)
    os.replace(temp, path)


async def test_older_crl_is_refused_by_a_running_and_a_restarted_node(
    settings: Settings, tmp_path: Path
) -> None:
    """Reloaded while running or loaded after a restart, an older CRL is revocation-unknown."""
    pki = ThrowawayPKI.create(tmp_path / "pki", BUS_PARTIES, SYSTEM_CLOCK)
    settings = settings.model_copy(update={"certs_dir": pki.path})
    crl_path = pki.path / "crl.pem"
    old_crl = crl_path.read_bytes()
    sender = pki.credentials("single-center").certificate
    pki.authority.revoke("single-center")

    node = build_node("improvement", settings, config=FAST)
    await node.start()
    try:
        with pytest.raises(CertificateRevoked):
            node.ctx.trust.check(sender, SYSTEM_CLOCK.now())
        put_back(crl_path, old_crl)
        node.ctx.trust.refresh()
        with pytest.raises(RevocationUnknown, match="older CRL"):
            node.ctx.trust.check(sender, SYSTEM_CLOCK.now())
    finally:
        await node.stop()

    # A new node process (new TrustStore, same party store) still refuses the old CRL.
    restarted = build_node("improvement", settings, config=FAST)
    await restarted.start()
    try:
        with pytest.raises(RevocationUnknown, match="older CRL"):
            restarted.ctx.trust.check(sender, SYSTEM_CLOCK.now())
        assert await restarted.ctx.store.get_meta(META_KEY)
    finally:
        await restarted.stop()
