"""Organization settings every service keeps (from ``OrganizationUpserted``), newest version wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.contracts.batchly import OrganizationPayload
from qbsync.persistence.tables import organizations

__all__ = ["OrganizationSettings", "get_organization", "upsert_organization"]


@dataclass(frozen=True, slots=True)
class OrganizationSettings:
    organization_id: UUID
    name: str
    timezone: str
    customer_update_mode: str
    invoice_number_gap_policy: str
    active: bool
    entity_version: int

    @classmethod
    def default(cls, organization_id: UUID) -> OrganizationSettings:
        """What applies before the organization's first ``OrganizationUpserted`` arrives (the contract defaults)."""
        payload = OrganizationPayload(organization_id=organization_id, name="(unknown)")
        return cls(
            organization_id,
            payload.name,
            payload.timezone,
            payload.customer_update_mode,
            payload.invoice_number_gap_policy,
            payload.active,
            -1,
        )


async def upsert_organization(
    conn: AsyncConnection, payload: OrganizationPayload, *, version: int, now: datetime
) -> bool:
    """Store the settings unless a newer version is already stored. Returns whether they were applied."""
    values = {
        "name": payload.name,
        "timezone": payload.timezone,
        "customer_update_mode": payload.customer_update_mode,
        "invoice_number_gap_policy": payload.invoice_number_gap_policy,
        "active": payload.active,
        "entity_version": version,
        "updated_at": now,
    }
    current = (
        await conn.execute(
            select(organizations.c.entity_version).where(organizations.c.organization_id == payload.organization_id)
        )
    ).first()
    if current is None:
        await conn.execute(organizations.insert().values(organization_id=payload.organization_id, **values))
        return True
    if current.entity_version > version:
        return False
    await conn.execute(
        update(organizations).where(organizations.c.organization_id == payload.organization_id).values(**values)
    )
    return True


async def get_organization(conn: AsyncConnection, organization_id: UUID) -> OrganizationSettings:
    row = (await conn.execute(select(organizations).where(organizations.c.organization_id == organization_id))).first()
    if row is None:
        return OrganizationSettings.default(organization_id)
    return OrganizationSettings(
        row.organization_id,
        row.name,
        row.timezone,
        row.customer_update_mode,
        row.invoice_number_gap_policy,
        row.active,
        row.entity_version,
    )
