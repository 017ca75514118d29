"""The service catalog: who provides which service, who may call it, and its deadline."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exchange.envelope.model import PartyId, ServiceCode, ServiceVersion
from exchange.exceptions import AttachmentRefused, NotAParty, UnknownParty

ADAPTER_MODULE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
"""A dotted Python module name: what a party's ``adapter`` may be."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Role(StrEnum):
    """What an identity of the catalog is: a department, or a piece of the infrastructure."""

    DEPARTMENT = "department"  # sends requests and provides services
    COLLECTOR = "collector"  # the central audit collector: signs head acknowledgments
    CONSOLE = "console"  # the support console: signs admin commands


class ArchiveMode(StrEnum):
    """What the collector keeps of a service's envelopes beside the audit records."""

    FULL = "full"  # the wire bytes, addressed by the digests the signed records carry
    DIGEST = "digest"  # only the digests (the records): the content stays with the parties


class Party(_Frozen):
    """An identity on the bus: a department, or (with another role) the infrastructure.

    Infrastructure identities hold certificates and sign, but they neither send requests nor
    provide services: an envelope signed by one is refused (``not-a-party``).
    """

    id: PartyId
    name: str
    role: Role = Role.DEPARTMENT
    adapter: Annotated[str, Field(pattern=ADAPTER_MODULE)] | None = None
    """The department's adapter package (``adapters.land_property``): its ``config.CONFIG``
    and ``system.register`` are what ``exchange node run`` and the demo load for it."""

    @model_validator(mode="after")
    def _adapter_of_a_department(self) -> Self:
        if self.adapter is not None and not self.is_department:
            raise ValueError(
                f"{self.id} is the exchange's {self.role.value}: only departments have adapters"
            )
        return self

    @property
    def is_department(self) -> bool:
        """True for a party that sends requests and provides services."""
        return self.role is Role.DEPARTMENT


class Deadline(_Frozen):
    """The regulated time to answer a request."""

    days: Annotated[int, Field(gt=0, le=366)]
    working_days: bool = False


MEDIA_TYPE_PATTERN = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$"


class AttachmentPolicy(_Frozen):
    """What documents a service's requests and responses may carry beside the envelope.

    The default allows none: a service takes attachments only where its entry says so.
    """

    media_types: frozenset[
        Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")]
    ] = frozenset()
    max_size: Annotated[int, Field(ge=0)] = 0
    """Bytes per attachment, at most."""
    max_count: Annotated[int, Field(ge=0, le=1000)] = 0
    """Attachments per envelope, at most."""

    def check(self, service: str, items: Iterable[tuple[str, str, int | None]]) -> None:
        """Each (name, media type, size or None if not known yet) is allowed, and not too many.

        Raises:
            AttachmentRefused (attachment-refused): the message names the item and the limit.
        """
        items = list(items)
        if len(items) > self.max_count:
            raise AttachmentRefused(
                f"{service} takes at most {self.max_count} attachments, not {len(items)}",
                service=service,
            )
        for name, media_type, size in items:
            if media_type not in self.media_types:
                allowed = ", ".join(sorted(self.media_types)) or "none"
                raise AttachmentRefused(
                    f"{name}: {service} does not take {media_type} attachments "
                    f"(allowed: {allowed})",
                    service=service,
                )
            if size is not None and size > self.max_size:
                raise AttachmentRefused(
                    f"{name}: {size} bytes is more than the {self.max_size} bytes {service} "
                    "allows per attachment",
                    service=service,
                )


class Service(_Frozen):
    """One service contract: provider, callers, deadline, and its schemas."""

    code: ServiceCode
    version: ServiceVersion
    title: str
    provider: PartyId
    callers: frozenset[PartyId]
    deadline: Deadline
    schemas: str = Field(description="folder under the schemas dir holding the four schema files")
    # Requests of one case are handled one at a time, oldest first (the store's claim holds
    # later ones back while an older one is open).
    ordered: bool = False
    archive: ArchiveMode = ArchiveMode.FULL
    attachments: AttachmentPolicy = AttachmentPolicy()

    @property
    def key(self) -> tuple[str, str]:
        """(code, version): how envelopes name the service."""
        return (self.code, self.version)


class CatalogData(_Frozen):
    """The catalog file's content, checked for consistency."""

    version: str
    parties: tuple[Party, ...]
    services: tuple[Service, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        everyone = {party.id for party in self.parties}
        if len(everyone) != len(self.parties):
            raise ValueError("party ids must be unique")
        known = {party.id for party in self.parties if party.is_department}
        keys = [service.key for service in self.services]
        if len(set(keys)) != len(keys):
            raise ValueError("each service code and version may appear once")
        for service in self.services:
            strangers = ({service.provider} | service.callers) - known
            if strangers & everyone:
                raise ValueError(
                    f"{service.code}: {sorted(strangers & everyone)} are infrastructure, "
                    "not departments: they may neither provide nor call a service"
                )
            if strangers:
                raise ValueError(f"{service.code}: unknown parties {sorted(strangers)}")
            if service.provider in service.callers:
                raise ValueError(f"{service.code}: the provider cannot call its own service")
        modes: dict[str, ArchiveMode] = {}
        for service in self.services:
            # Audit records name a service by code only: its versions must archive alike.
            if modes.setdefault(service.code, service.archive) is not service.archive:
                raise ValueError(
                    f"{service.code}: every version must have the same archive mode "
                    f"({modes[service.code].value} or {service.archive.value}, not both)"
                )
        return self

    def archive_mode(self, service: str | None) -> ArchiveMode:
        """What the collector keeps of the envelopes of the service with code ``service``.

        A service the catalog does not list (or none) gets the default, ``full``.
        """
        for entry in self.services:
            if entry.code == service:
                return entry.archive
        return ArchiveMode.FULL

    def check_party(self, party: str) -> Party:
        """``party`` is a department: it may send and receive envelopes.

        Raises:
            NotAParty (not-a-party): an infrastructure identity (collector, console).
            UnknownParty (unknown-party): not in the catalog at all.
        """
        found = next((p for p in self.parties if p.id == party), None)
        if found is None:
            raise UnknownParty(f"{party} is not in the catalog", party=party)
        if not found.is_department:
            raise NotAParty(
                f"{party} is the exchange's {found.role.value}: it signs audit documents, "
                "never envelopes",
                party=party,
            )
        return found
