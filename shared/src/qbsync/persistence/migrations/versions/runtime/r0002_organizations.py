"""organizations: each organization's sync settings as the service learnt them

Revision ID: r0002_organizations
Revises: r0001_runtime
Create Date: 2026-11-24 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qbsync.persistence.types

revision: str = "r0002_organizations"
down_revision: str | None = "r0001_runtime"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("customer_update_mode", sa.String(length=16), nullable=False),
        sa.Column("invoice_number_gap_policy", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("entity_version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organizations")),
    )


def downgrade() -> None:
    op.drop_table("organizations")
