"""The envelope model, independent of any wire format."""

from exchange.envelope.model import Attachment, Envelope, Fault, Kind, ServiceRef

__all__ = ["Attachment", "Envelope", "Fault", "Kind", "ServiceRef"]
