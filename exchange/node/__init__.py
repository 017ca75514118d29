"""A party's node: outbound and inbound pipelines, handler driver, relay, and its store."""

from exchange.node.config import NodeConfig
from exchange.node.factory import build_node
from exchange.node.handlers import BROKER, LATER, IncomingRequest, Later, Reject, Reply, Waiting
from exchange.node.node import Node
from exchange.node.notices import Notice

__all__ = [
    "BROKER",
    "LATER",
    "IncomingRequest",
    "Later",
    "Node",
    "NodeConfig",
    "Notice",
    "Reject",
    "Reply",
    "Waiting",
    "build_node",
]
