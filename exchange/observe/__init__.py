"""Operations: Prometheus metrics and health probes of nodes and the collector.

The composition roots wire it in: ``build_node(companions=node_companions(settings))`` for a
node, ``observe_collector`` beside the collector. Nothing in the core imports it.
"""

from exchange.observe.central import CollectorMetrics
from exchange.observe.factory import Observer, node_companions, observe_collector, observe_node
from exchange.observe.health import Readiness
from exchange.observe.metrics import NodeMetrics
from exchange.observe.server import ProbeServer

__all__ = [
    "CollectorMetrics",
    "NodeMetrics",
    "Observer",
    "ProbeServer",
    "Readiness",
    "node_companions",
    "observe_collector",
    "observe_node",
]
