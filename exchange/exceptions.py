"""Every error the exchange raises, each with a stable machine ``code``.

A peer only ever sees the code; the message and the data carried by the exception are
for the local audit log and for the person reading it.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Root of all exchange errors."""

    code: str = "exchange-error"

    def __init__(self, message: str, **data: object) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- envelope: the bytes or the model are not an acceptable envelope --------------------


class EnvelopeError(ExchangeError):
    """The input is not an acceptable envelope."""

    code = "malformed"


class Malformed(EnvelopeError):
    """Not well-formed, not UTF-8, forbidden XML constructs, or breaks the envelope schema."""

    code = "malformed"


class TooLarge(EnvelopeError):
    """Larger than the configured limit; rejected before parsing."""

    code = "too-large"


class TooComplex(EnvelopeError):
    """Past a structural limit (depth, elements, attributes, namespaces, name length)."""

    code = "too-complex"


# --- signature: the signature itself does not hold -------------------------------------


class SignatureError(ExchangeError):
    """The signature is missing, not of our profile, or does not verify."""

    code = "signature-invalid"


class SignatureInvalid(SignatureError):
    """The signature or a digest does not match the signed bytes."""

    code = "signature-invalid"


class UnsupportedAlgorithm(SignatureError):
    """An algorithm outside the profile's allow-list (HMAC, SHA-1, ``none`` ...)."""

    code = "unsupported-algorithm"


class VerifyFailed(SignatureError):
    """Verification raised something unexpected; refused (fail closed), logged and counted.

    Nothing it could not check is trusted; the stack trace is in the log for a developer.
    """

    code = "verify-failed"


class WrongDocumentType(SignatureError):
    """A signed document of another kind (its JWS ``typ`` or ``cty``) than expected here."""

    code = "wrong-document-type"


# --- trust: the signer's certificate is not acceptable ---------------------------------


class TrustError(ExchangeError):
    """The signing certificate is not trusted for this envelope."""

    code = "certificate-unknown"


class CertificateUnknown(TrustError):
    """The certificate does not chain to the trust store's root."""

    code = "certificate-unknown"


class CertificateExpired(TrustError):
    """The certificate's validity ended before the time it is judged at."""

    code = "certificate-expired"


class CertificateNotYetValid(TrustError):
    """The certificate's validity starts after the time it is judged at."""

    code = "certificate-not-yet-valid"


class CertificateRevoked(TrustError):
    """The certificate is on the root's CRL."""

    code = "certificate-revoked"


class CertificateUsage(TrustError):
    """The certificate may not sign envelopes (no digitalSignature, or a CA certificate)."""

    code = "certificate-usage"


class RevocationUnknown(TrustError):
    """No valid, current CRL: revocation cannot be checked, so nothing is trusted."""

    code = "revocation-unknown"


class SenderMismatch(TrustError):
    """The certificate belongs to another party than the envelope's sender."""

    code = "sender-mismatch"


# --- PKI administration -----------------------------------------------------------------


class PKIError(ExchangeError):
    """The certificate authority cannot do what was asked."""

    code = "pki-error"


class UnknownParty(PKIError):
    """No certificate or key for this party (or serial) in the trust store."""

    code = "unknown-party"


class AmbiguousRevocation(PKIError):
    """A revoke of a party with several valid certificates that does not say which."""

    code = "certificate-ambiguous"


class CAKeyOffline(PKIError):
    """The root CA's private key is not where the operation needs it; nothing was changed."""

    code = "ca-key-offline"


class PKIFileCorrupt(PKIError):
    """A PKI file (index, root, CRL, certificate, key) cannot be parsed; the message names it."""

    code = "pki-file-corrupt"


class ContentPruned(ExchangeError):
    """The message is known, but its content was pruned (retention or metadata-only)."""

    code = "content-pruned"


class UnknownMessage(ExchangeError):
    """No such message in this party's store."""

    code = "unknown-message"


class WaitedOnUnknown(ExchangeError):
    """A handler waits on an id that is no request this node sent: nothing would end the wait.

    Failing closed, it counts as the handler's own failure (retried, then processing-failed).
    """

    code = "waited-on-unknown"


# --- store ------------------------------------------------------------------------------


class StoreError(ExchangeError):
    """The party's store refused or failed an operation."""

    code = "store-error"


class DuplicateMessage(StoreError):
    """A message with this message_id was already received."""

    code = "duplicate"


class StoreUnavailable(StoreError):
    """The store cannot be reached or written (disk full, database down)."""

    code = "store-unavailable"


class AuditTampered(StoreError):
    """The audit chain does not verify: a record was edited, removed, inserted or reordered."""

    code = "audit-tampered"


class CheckpointInvalid(AuditTampered):
    """A signed audit checkpoint does not verify, or does not match the chain it covers."""

    code = "checkpoint-invalid"


class BundleInvalid(AuditTampered):
    """An evidence bundle is unreadable, incomplete, or does not verify."""

    code = "bundle-invalid"


class AuditConflict(AuditTampered):
    """A second, different record was offered for a party's seq the log already holds."""

    code = "audit-conflict"


class AuditMissing(AuditTampered):
    """Records the log should hold are gone: a party, or a tail someone acknowledged."""

    code = "audit-missing"


class AckInvalid(AuditTampered):
    """A head acknowledgment does not verify, or is not the collector's for this party."""

    code = "ack-invalid"


class ArchiveMismatch(AuditTampered):
    """Envelope bytes offered to (or read from) the archive do not hash to their digest."""

    code = "archive-mismatch"


class ArchiveUnclaimed(AuditTampered):
    """Envelope bytes in an audit batch that no record of the batch names by digest."""

    code = "archive-unclaimed"


class BrokerUserMismatch(StoreError):
    """An audit batch came over the broker as another party's broker user (AMQP user_id)."""

    code = "broker-user-mismatch"


# --- policy: a verified envelope that this party will not process ------------------------


class PolicyError(ExchangeError):
    """A verified envelope the catalog or the node's rules refuse; answered with a fault."""

    code = "policy-error"


class UnknownService(PolicyError):
    """The catalog has no such service (or not that version)."""

    code = "unknown-service"


class AccessDenied(PolicyError):
    """The sender may not call this service, or the recipient does not provide it."""

    code = "access-denied"


class InvalidContent(PolicyError):
    """The payload breaks the service's schema; the message names the field."""

    code = "invalid-content"


class NotAParty(PolicyError):
    """An infrastructure identity (collector, console): it neither sends nor provides."""

    code = "not-a-party"


class CommandForbidden(PolicyError):
    """A signed admin command whose signer is not the catalog's console."""

    code = "command-forbidden"


class WrongRecipient(PolicyError):
    """The envelope is addressed to another party than the one that received it."""

    code = "wrong-recipient"


class Expired(PolicyError):
    """The envelope's ``expires_at`` has passed."""

    code = "expired"


class AttachmentRefused(PolicyError):
    """An attachment's media type, size or count is outside what the service's catalog entry
    allows (refused at the sender before upload, and again at the receiver)."""

    code = "attachment-refused"


class AttachmentMismatch(PolicyError):
    """An attachment's bytes do not match the size or SHA-256 the signed envelope lists."""

    code = "attachment-mismatch"


class AttachmentMissing(PolicyError):
    """An attachment the request lists did not arrive complete within its bound."""

    code = "attachment-missing"


class ChunkUnexpected(PolicyError):
    """An attachment chunk no verified envelope of its sender announced: quarantined."""

    code = "chunk-unexpected"


class ChunkInvalid(PolicyError):
    """An attachment chunk that is not one (bad framing, bad fields): quarantined."""

    code = "chunk-invalid"


class CatalogError(ExchangeError):
    """The catalog file is unreadable or inconsistent."""

    code = "catalog-invalid"


class AdapterInvalid(ExchangeError):
    """The adapter the catalog names for a department cannot be loaded or does not fit it."""

    code = "adapter-invalid"


# --- transport --------------------------------------------------------------------------


class TransportError(ExchangeError):
    """The broker did not take a message."""

    code = "transport-error"


class BrokerUnavailable(TransportError):
    """No connection to RabbitMQ (down, unreachable, refused our credentials)."""

    code = "broker-unavailable"


class BrokerRefused(TransportError):
    """RabbitMQ answered but refused us: the login (ACCESS_REFUSED) or the vhost (NOT_ALLOWED).

    Retrying cannot help until an admin fixes the user, password or vhost, so it fails at once.
    """

    code = "broker-refused"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


class Unroutable(TransportError):
    """The broker returned a mandatory message: no queue for that recipient."""

    code = "unroutable"


class PublishNotConfirmed(TransportError):
    """The broker nacked the message or did not confirm it in time."""

    code = "publish-not-confirmed"


class StateConflict(StoreError):
    """A record was not in the state a transaction expected (another step moved it first)."""

    code = "state-conflict"


class LeaseLost(StateConflict):
    """A worker's claim of a request was taken over (its lease expired): what it would have
    committed for that request is dropped, so the request is never answered twice."""

    code = "lease-lost"


class AlreadyFinal(StateConflict):
    """A request already has its final answer: nothing final may follow (DESIGN.md: Final is final).

    To try again, its sender files a new request (new message id, same case id).
    """

    code = "already-final"


# --- operations: metrics and health probes ------------------------------------------------


class NotReady(ExchangeError):
    """A readiness check failed (broker, store, trust store): ``/ready`` answers 503 naming it."""

    code = "not-ready"

    def __init__(self, message: str, *, check: str = "") -> None:
        super().__init__(message, check=check)
        self.check = check


class ProbeUnavailable(ExchangeError):
    """The metrics and health probe server cannot listen where it was told to."""

    code = "probe-unavailable"


# --- console: who may see and do what in the support console ------------------------------


class ConsoleError(ExchangeError):
    """The support console refused a person's request."""

    code = "console-error"


class LoginFailed(ConsoleError):
    """Unknown user or wrong password (the same error for both: no oracle of user names)."""

    code = "login-failed"


class LoginThrottled(ConsoleError):
    """Too many failed logins for this user or from this address: wait before trying again."""

    code = "login-throttled"


class CsrfInvalid(ConsoleError):
    """A form was posted without this session's CSRF token (or with another one)."""

    code = "csrf-invalid"


class RoleForbidden(ConsoleError):
    """The action needs a role the person does not hold (or no one is logged in)."""

    code = "role-forbidden"


class UsersFileInvalid(ConsoleError):
    """The console's users file cannot be read, or a user name or password is unacceptable."""

    code = "users-file-invalid"


class ReplayUnavailable(ConsoleError):
    """This console has no way to send admin commands (no replayer is configured)."""

    code = "replay-unavailable"
