"""The observe tests run nodes on the real broker with the bus tests' fixtures."""

from tests.bus.conftest import bus_prefix, live_pki, make_node, settings

__all__ = ["bus_prefix", "live_pki", "make_node", "settings"]
