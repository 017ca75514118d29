"""The one envelope model: what every request, receipt, status, response, fault and cancel is."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypeAliasType

PARTY_ID_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
SERVICE_CODE_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
SERVICE_VERSION_PATTERN = r"^[0-9]{1,4}(\.[0-9]{1,4}){0,2}$"
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
PAYLOAD_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"
FAULT_CODE_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
# Characters XML 1.0 cannot carry: C0 controls other than tab, LF and CR, U+FFFE, U+FFFF.
XML_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$"
MAX_PAYLOAD_DEPTH = 16


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return value.astimezone(UTC)


PartyId = Annotated[str, StringConstraints(pattern=PARTY_ID_PATTERN)]
ServiceCode = Annotated[str, StringConstraints(pattern=SERVICE_CODE_PATTERN)]
ServiceVersion = Annotated[str, StringConstraints(pattern=SERVICE_VERSION_PATTERN)]
MessageId = Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)]
Timestamp = Annotated[datetime, AfterValidator(_utc)]
Digest = Annotated[str, StringConstraints(pattern=SHA256_HEX_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=XML_TEXT_PATTERN)]


class Kind(StrEnum):
    """What an envelope is in the conversation about one request."""

    REQUEST = "request"
    RECEIPT = "receipt"
    STATUS = "status"
    RESPONSE = "response"
    FAULT = "fault"
    CANCEL = "cancel"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ServiceRef(_Frozen):
    """A service of the catalog and the version of its contract."""

    code: ServiceCode
    version: ServiceVersion


class Attachment(_Frozen):
    """A document that travels beside the envelope, bound to it by its hash."""

    name: Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]+$"
        ),
    ]
    media_type: Annotated[
        str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
    ]
    size: Annotated[int, Field(ge=0)]
    sha256: Digest
    location: Annotated[
        str, StringConstraints(min_length=1, max_length=1024, pattern=XML_TEXT_PATTERN)
    ]


class Fault(_Frozen):
    """Why a request was refused or failed: a machine code and a text for people."""

    code: Annotated[str, StringConstraints(pattern=FAULT_CODE_PATTERN)]
    text: Text


# A payload is a JSON object of strings, integers, booleans, objects and lists of those:
# no null (leave the field out), no floats (use decimal strings), keys usable as XML names.
PayloadKey = Annotated[str, StringConstraints(pattern=PAYLOAD_KEY_PATTERN)]
PayloadScalar = (
    Annotated[StrictStr, StringConstraints(pattern=XML_TEXT_PATTERN)] | StrictInt | StrictBool
)
# Strict types never overlap, so trying them in order gives the same result as pydantic's
# "smart" union at a third less cost per value (this runs on every envelope verified).
PayloadItem = Annotated[PayloadScalar | "PayloadObject", Field(union_mode="left_to_right")]
PayloadValue = Annotated[
    PayloadScalar | "PayloadObject" | list[PayloadItem], Field(union_mode="left_to_right")
]
PayloadObject = TypeAliasType("PayloadObject", "dict[PayloadKey, PayloadValue]")


def _depth(payload: dict[str, object]) -> int:
    # Breadth-first over object levels: cheap enough for every envelope verified.
    depth, level = 0, [payload]
    while level:
        depth += 1
        below: list[dict[str, object]] = []
        for mapping in level:
            for value in mapping.values():
                if type(value) is dict:
                    below.append(value)
                elif type(value) is list:
                    below.extend(item for item in value if type(item) is dict)
        level = below
    return depth


def _shallow(payload: dict[str, object]) -> dict[str, object]:
    if _depth(payload) > MAX_PAYLOAD_DEPTH:
        raise ValueError(f"payload nested deeper than {MAX_PAYLOAD_DEPTH} objects")
    return payload


class Envelope(_Frozen):
    """One message between two parties.

    Every kind but ``request`` answers a request: it carries the request's ``message_id``
    as ``correlation_id`` and the SHA-256 of the request's exact wire bytes as
    ``request_digest``.
    """

    message_id: MessageId
    kind: Kind
    service: ServiceRef
    sender: PartyId
    recipient: PartyId
    created_at: Timestamp
    expires_at: Timestamp
    correlation_id: MessageId | None = None
    case_id: Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)] | None = None
    request_digest: Digest | None = None
    test: bool = False
    payload: Annotated[PayloadObject, AfterValidator(_shallow)] | None = None
    attachments: tuple[Attachment, ...] = ()
    fault: Fault | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, use_enum_values=False)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        if self.sender == self.recipient:
            raise ValueError("sender and recipient must differ")
        if self.kind is Kind.REQUEST:
            if self.correlation_id is not None or self.request_digest is not None:
                raise ValueError("a request carries neither correlation_id nor request_digest")
        elif self.correlation_id is None or self.request_digest is None:
            raise ValueError(f"a {self.kind.value} must carry correlation_id and request_digest")
        if (self.kind is Kind.FAULT) != (self.fault is not None):
            raise ValueError("fault is required on, and only on, kind 'fault'")
        return self
