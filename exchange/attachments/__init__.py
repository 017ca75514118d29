"""Attachments: documents that travel beside an envelope, bound to it by their SHA-256.

``store`` keeps them content-addressed; ``chunks`` is the message that moves them;
``sender`` streams them, flow-controlled; ``receiver`` takes them in while hashing;
``gate`` holds a request until every attachment it lists arrived intact.
"""

from exchange.attachments.chunks import CHUNK_SIZE, Chunk
from exchange.attachments.gate import AWAITING, Gate
from exchange.attachments.receiver import Receiver
from exchange.attachments.sender import LOCATION, Outgoing, Uploader
from exchange.attachments.store import AttachmentFile, AttachmentStore, Partial, Stored

__all__ = [
    "AWAITING",
    "CHUNK_SIZE",
    "LOCATION",
    "AttachmentFile",
    "AttachmentStore",
    "Chunk",
    "Gate",
    "Outgoing",
    "Partial",
    "Receiver",
    "Stored",
    "Uploader",
]
