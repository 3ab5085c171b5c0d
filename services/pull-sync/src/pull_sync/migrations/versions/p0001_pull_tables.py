"""pull-sync: invoice links and status, item / tax states, Batchly items, watermarks, schedule claims, leases

Revision ID: p0001_pull_tables
Revises: (base of the pull_sync branch)
Create Date: 2026-11-24 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import qbsync.persistence.types

revision: str = "p0001_pull_tables"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("pull_sync",)
depends_on: Sequence[str] | None = ("r0001_runtime",)

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = qbsync.persistence.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invoice_links",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_invoice_id", sa.String(length=64), nullable=False),
        sa.Column("doc_number", sa.String(length=64), nullable=True),
        sa.Column("linked_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "invoice_id", name=op.f("pk_invoice_links")),
        sa.UniqueConstraint("organization_id", "qbo_invoice_id", name="uq_invoice_links_org_qbo"),
    )
    op.create_table(
        "invoice_status",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_invoice_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("facts", _JSON, nullable=False),
        sa.Column("checked_at", _TIME, nullable=False),
        sa.Column("published_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("organization_id", "qbo_invoice_id", name=op.f("pk_invoice_status")),
    )
    op.create_index(
        "ix_invoice_status_org_status_due", "invoice_status", ["organization_id", "status", "due_date"], unique=False
    )
    op.create_table(
        "invoice_payments",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_payment_id", sa.String(length=64), nullable=False),
        sa.Column("qbo_invoice_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "qbo_payment_id", "qbo_invoice_id", name=op.f("pk_invoice_payments")
        ),
    )
    op.create_table(
        "item_states",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("published_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "qbo_id", name=op.f("pk_item_states")),
    )
    op.create_table(
        "tax_states",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("qbo_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("published_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "kind", "qbo_id", name=op.f("pk_tax_states")),
    )
    op.create_table(
        "batchly_items",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=True),
        sa.Column("entity_version", sa.BigInteger(), nullable=False),
        sa.Column("qbo_item_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "item_id", name=op.f("pk_batchly_items")),
    )
    op.create_table(
        "pull_watermarks",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("changed_since", _TIME, nullable=False),
        sa.Column("recorded_at", _TIME, nullable=False),
        sa.Column("last_full_at", _TIME, nullable=True),
        sa.Column("last_summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("organization_id", "kind", name=op.f("pk_pull_watermarks")),
    )
    op.create_table(
        "schedule_claims",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("fire_at", _TIME, nullable=False),
        sa.Column("claimed_at", _TIME, nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("published_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("organization_id", "slot", name=op.f("pk_schedule_claims")),
    )
    op.create_index(
        "ix_schedule_claims_unpublished", "schedule_claims", ["published_at", "claimed_at"], unique=False
    )
    op.create_table(
        "pull_leases",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "kind", name=op.f("pk_pull_leases")),
    )


def downgrade() -> None:
    op.drop_table("pull_leases")
    op.drop_index("ix_schedule_claims_unpublished", table_name="schedule_claims")
    op.drop_table("schedule_claims")
    op.drop_table("pull_watermarks")
    op.drop_table("batchly_items")
    op.drop_table("tax_states")
    op.drop_table("item_states")
    op.drop_table("invoice_payments")
    op.drop_index("ix_invoice_status_org_status_due", table_name="invoice_status")
    op.drop_table("invoice_status")
    op.drop_table("invoice_links")
