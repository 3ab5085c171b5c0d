"""The envelope every qbsync message travels in (architecture.md §3).

``event_id`` is the idempotency key; ``entity_version`` is monotonic per entity so a handler can ignore a stale
snapshot; ``payload`` carries the entity's full state (event-carried state), which makes handlers convergent: applying
the newest snapshot is always right, whatever arrived before it.

Inbound models (from Batchly) are strict and reject unknown fields: a producer's typo fails loudly at the edge
instead of being silently dropped. Outbound models are equally strict when we read them back (tests, the ops CLI).
A breaking change to a contract is a new ``schema_version`` (a new model), never an edit of an existing one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeAlias, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["AnyEnvelope", "ContractModel", "Envelope", "Payload"]


class ContractModel(BaseModel):
    """Base of every contract model: strict types, no unknown fields, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, ser_json_timedelta="float")


P = TypeVar("P", bound=ContractModel)
Payload = ContractModel


class Envelope(ContractModel, Generic[P]):
    """A message on a qbsync topic. Concrete events subclass it with a fixed ``event_type`` and payload model."""

    #: Filled in by ``qbsync.contracts.registry.event`` for concrete events.
    EVENT_TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1
    #: The topic this event is published to (see qbsync.topics).
    TOPIC: ClassVar[str] = ""
    #: "inbound" (Batchly -> qbsync), "outbound" (qbsync -> Batchly / ops) or "internal" (between qbsync services).
    DIRECTION: ClassVar[str] = "inbound"
    #: Entity type named in ledger rows and results ("customer", "invoice", ...).
    ENTITY_TYPE: ClassVar[str] = ""

    event_id: UUID = Field(description="Unique id of this event; the idempotency key of every consumer.")
    event_type: str = Field(description="Name of the event, e.g. CustomerCreated.")
    schema_version: int = Field(ge=1, description="Version of this event's schema; breaking changes bump it.")
    occurred_at: AwareDatetime = Field(description="When the change happened at the source (timezone required).")
    organization_id: UUID = Field(description="The Batchly organization (tenant); also the Kafka record key.")
    entity_id: UUID = Field(description="Id of the entity the event is about.")
    entity_version: int = Field(
        ge=0, description="Monotonic per entity; a handler ignores a snapshot older than one it applied."
    )
    correlation_id: UUID | None = Field(default=None, description="Id shared by every event of one workflow.")
    causation_id: UUID | None = Field(default=None, description="event_id of the event that caused this one.")
    payload: P


#: Any concrete event (for code that handles events generically).
AnyEnvelope: TypeAlias = Envelope[Any]
