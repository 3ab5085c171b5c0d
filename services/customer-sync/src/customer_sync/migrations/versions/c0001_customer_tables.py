"""customer-sync: customer links and snapshots

Revision ID: c0001_customer_tables
Revises: (base of the customer_sync branch)
Create Date: 2026-11-24 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import qbsync.persistence.types

revision: str = "c0001_customer_tables"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("customer_sync",)
depends_on: Sequence[str] | None = ("r0001_runtime",)

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "customer_links",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("qbo_id", sa.String(length=64), nullable=False),
        sa.Column("qbo_sync_token", sa.String(length=32), nullable=False),
        sa.Column("last_entity_version", sa.BigInteger(), nullable=False),
        sa.Column("pushed_body", _JSON, nullable=True),
        sa.Column("pushed_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("created_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "customer_id", name=op.f("pk_customer_links")),
        sa.UniqueConstraint("organization_id", "qbo_id", name="uq_customer_links_org_qbo"),
    )
    op.create_table(
        "customer_snapshots",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("entity_version", sa.BigInteger(), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "customer_id", name=op.f("pk_customer_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("customer_snapshots")
    op.drop_table("customer_links")
