"""token-manager tables: QuickBooks connections (encrypted tokens), OAuth states, connection event outbox

Revision ID: tm0001_token_manager
Revises: (base of the token_manager branch)
Depends on: r0001_runtime
Create Date: 2026-11-24 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import qbsync.persistence.types

revision: str = "tm0001_token_manager"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("token_manager",)
depends_on: Sequence[str] | None = ("r0001_runtime",)


def upgrade() -> None:
    op.create_table(
        "qbo_connections",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("realm_id", sa.String(length=64), nullable=False),
        sa.Column("active_realm_id", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("company_name", sa.String(length=255), nullable=True),
        sa.Column("access_token_ciphertext", sa.Text(), nullable=True),
        sa.Column("refresh_token_ciphertext", sa.Text(), nullable=True),
        sa.Column("access_token_fingerprint", sa.String(length=32), nullable=True),
        sa.Column("access_expires_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("refresh_expires_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("refresh_hard_expires_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("refresh_token_changed_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("connected_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_refresh_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_forced_refresh_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("event_version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_qbo_connections")),
        sa.UniqueConstraint("active_realm_id", name=op.f("uq_qbo_connections_active_realm_id")),
    )
    with op.batch_alter_table("qbo_connections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_qbo_connections_status_access_expires_at", ["status", "access_expires_at"], unique=False
        )

    op.create_table(
        "oauth_states",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_oauth_states")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_states_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "connection_event_outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column(
            "record", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", qbsync.persistence.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_connection_event_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_connection_event_outbox_event_id")),
    )


def downgrade() -> None:
    op.drop_table("connection_event_outbox")
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_states_expires_at"))
    op.drop_table("oauth_states")
    with op.batch_alter_table("qbo_connections", schema=None) as batch_op:
        batch_op.drop_index("ix_qbo_connections_status_access_expires_at")
    op.drop_table("qbo_connections")
