"""Tables of the consumer runtime, present in every service's database.

* ``sync_ledger`` — the seed's ``qbo_sync_queue`` adapted to events: one row per inbound event (one attempt chain),
  written by the runtime as the record moves through the ladder. History, the failed list and the dashboard read it.
* ``sync_attempts`` — every attempt of a chain (the ledger's history).
* ``processed_events`` — the idempotency ledger: an event id recorded in the same transaction as the state change it
  caused, with the result records to re-publish if the broker redelivers it.
* ``parked_records`` — records held while an organization's QuickBooks connection is lost.
* ``connection_status`` — the latest connection state per organization as this service learnt it from token-manager.
* ``organizations`` — each organization's sync settings (time zone, customer-update mode, invoice-gap policy) as
  this service learnt them from ``OrganizationUpserted``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from qbsync.persistence.types import JsonDocument, UtcDateTime

__all__ = [
    "connection_status",
    "metadata",
    "organizations",
    "parked_records",
    "processed_events",
    "sync_attempts",
    "sync_ledger",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sync_ledger = Table(
    "sync_ledger",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("service", String(64), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("organization_id", Uuid, nullable=True),
    Column("entity_type", String(64), nullable=False),
    Column("entity_id", Uuid, nullable=True),
    Column("entity_version", BigInteger, nullable=True),
    Column("direction", String(8), nullable=False),
    # pending | retrying | parked | completed | failed | ignored
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("last_attempt_at", UtcDateTime, nullable=True),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("error_class", String(32), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("hint", Text, nullable=True),
    Column("action", String(32), nullable=True),
    Column("qbo_id", String(64), nullable=True),
    Column("qbo_doc_number", String(64), nullable=True),
    Column("warnings", JsonDocument, nullable=True),
    Column("needs_review", Boolean, nullable=False, default=False),
    Column("manual_retry_available", Boolean, nullable=False, default=False),
    Column("source_topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("dead_letter_topic", String(255), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    UniqueConstraint("event_id"),
    Index("ix_sync_ledger_org_status", "organization_id", "entity_type", "status"),
    Index("ix_sync_ledger_status_updated", "status", "updated_at"),
    Index("ix_sync_ledger_entity", "entity_type", "entity_id"),
    Index("ix_sync_ledger_updated", "updated_at"),
)

sync_attempts = Table(
    "sync_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("ledger_id", Uuid, ForeignKey("sync_ledger.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    # completed | ignored | retry | dead_letter | parked | duplicate
    Column("outcome", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("error_class", String(32), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer_group", String(128), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("organization_id", Uuid, nullable=True),
    Column("outcome", String(16), nullable=False),
    # [{"topic": ..., "key": ..., "value": ..., "headers": [[name, value], ...]}, ...]
    Column("results", JsonDocument, nullable=False),
    Column("processed_at", UtcDateTime, nullable=False, index=True),
)

parked_records = Table(
    "parked_records",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("consumer_group", String(128), nullable=False),
    Column("organization_id", Uuid, nullable=False, index=True),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JsonDocument, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("parked_at", UtcDateTime, nullable=False),
    UniqueConstraint("consumer_group", "event_id", name="uq_parked_records_group_event"),
)

connection_status = Table(
    "connection_status",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    # connected | lost
    Column("status", String(16), nullable=False),
    Column("realm_id", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("event_id", Uuid, nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("customer_update_mode", String(16), nullable=False),
    Column("invoice_number_gap_policy", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("entity_version", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
