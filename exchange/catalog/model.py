"""The service catalog: who provides which service, who may call it, and its deadline."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exchange.envelope.model import PartyId, ServiceCode, ServiceVersion


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Party(_Frozen):
    """A department on the bus."""

    id: PartyId
    name: str


class Deadline(_Frozen):
    """The regulated time to answer a request."""

    days: Annotated[int, Field(gt=0, le=366)]
    working_days: bool = False


class Service(_Frozen):
    """One service contract: provider, callers, deadline, and its schemas."""

    code: ServiceCode
    version: ServiceVersion
    title: str
    provider: PartyId
    callers: frozenset[PartyId]
    deadline: Deadline
    schemas: str = Field(description="folder under the schemas dir holding the four schema files")

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
        known = {party.id for party in self.parties}
        if len(known) != len(self.parties):
            raise ValueError("party ids must be unique")
        keys = [service.key for service in self.services]
        if len(set(keys)) != len(keys):
            raise ValueError("each service code and version may appear once")
        for service in self.services:
            strangers = ({service.provider} | service.callers) - known
            if strangers:
                raise ValueError(f"{service.code}: unknown parties {sorted(strangers)}")
            if service.provider in service.callers:
                raise ValueError(f"{service.code}: the provider cannot call its own service")
        return self
