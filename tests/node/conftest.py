"""The broker fixtures of tests/bus, for node tests that need a live node."""

from tests.bus.conftest import (  # noqa: F401 - re-exported as fixtures
    bus_prefix,
    live_pki,
    make_node,
    settings,
)
