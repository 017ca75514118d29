"""The audit log's services: checkpoints, shipping, the central collector, trace and evidence.

The chain itself and the event vocabulary live in ``exchange.ledger``.
"""
