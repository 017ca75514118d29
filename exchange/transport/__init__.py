"""RabbitMQ: the bus's names, its topology, and a supervised connection per party."""

from exchange.transport.base import Transport
from exchange.transport.bus import Bus
from exchange.transport.delivery import Delivery
from exchange.transport.names import BusNames
from exchange.transport.topology import apply_topology

__all__ = ["Bus", "BusNames", "Delivery", "Transport", "apply_topology"]
