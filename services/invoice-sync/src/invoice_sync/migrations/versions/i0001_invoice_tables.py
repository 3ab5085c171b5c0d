"""invoice-sync: customer and item links, documents, pending voids

Revision ID: i0001_invoice_tables
Revises: (base of the invoice_sync branch)
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import qbsync.persistence.types

revision: str = "i0001_invoice_tables"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("invoice_sync",)
depends_on: Sequence[str] | None = ("r0001_runtime",)

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = qbsync.persistence.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_links",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_id", sa.String(length=64), nullable=False),
        sa.Column("source_event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "customer_id", name=op.f("pk_customer_links")),
    )
    op.create_table(
        "item_links",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_item_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "item_id", name=op.f("pk_item_links")),
    )
    op.create_table(
        "item_skus",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("qbo_item_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "sku", name=op.f("pk_item_skus")),
    )
    op.create_table(
        "documents",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("number_prefix", sa.String(length=64), nullable=True),
        sa.Column("number_seq", sa.BigInteger(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("entity_version", sa.BigInteger(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("qbo_entity", sa.String(length=32), nullable=True),
        sa.Column("qbo_id", sa.String(length=64), nullable=True),
        sa.Column("qbo_doc_number", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("warnings", _JSON, nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("synced_event_id", sa.Uuid(), nullable=True),
        sa.Column("intent_event_id", sa.Uuid(), nullable=True),
        sa.Column("intent_at", _TIME, nullable=True),
        sa.Column("writing_claim", sa.Uuid(), nullable=True),
        sa.Column("writing_since", _TIME, nullable=True),
        sa.Column("extra", _JSON, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "kind", "document_id", name=op.f("pk_documents")),
    )
    op.create_index(
        "ix_documents_numbers", "documents", ["organization_id", "kind", "number_prefix", "number_seq"], unique=False
    )
    op.create_index("ix_documents_status", "documents", ["organization_id", "kind", "status"], unique=False)
    op.create_table(
        "pending_voids",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("source_topic", sa.String(length=255), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("qbo_id", sa.String(length=64), nullable=True),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "invoice_id", name=op.f("pk_pending_voids")),
    )


def downgrade() -> None:
    op.drop_table("pending_voids")
    op.drop_index("ix_documents_status", table_name="documents")
    op.drop_index("ix_documents_numbers", table_name="documents")
    op.drop_table("documents")
    op.drop_table("item_skus")
    op.drop_table("item_links")
    op.drop_table("customer_links")
