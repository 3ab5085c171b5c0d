"""Items, QuickBooks -> Batchly: read (change feed, full reload, or the Ids a webhook named), decide, publish.

The decision is :mod:`qbsync.domain.items`: Inventory and Service items only, active ones unless the setting
includes inactive ones, matched to Batchly's items by SKU then Name, published only when something changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import events, store
from pull_sync.deps import Deps
from pull_sync.feed import Mode, Summary, commit_watermark, open_feed, publish_batches, read_by_ids
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import ItemChanged, ItemChangedPayload
from qbsync.domain.items import Catalog, QboItem, parse_item, plan_item, qbo_item_type
from qbsync.domain.pulls import Change, Published
from qbsync.qbo import QboQuery

__all__ = ["ItemPull"]

KIND = "items"


@dataclass(frozen=True, slots=True)
class _Planned:
    qbo_id: str
    change: Change
    envelope: ItemChanged
    state: store.StoredState


class ItemPull:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, org: UUID, *, mode: Mode, cause: AnyEnvelope | None, ids: Sequence[str] = ()) -> Summary:
        company = self.deps.qbo.company(org)
        async with self.deps.exclusive(org, KIND):
            if mode == "targeted":
                summary = Summary(KIND, "targeted")
                rows = list((await read_by_ids(company, "Item", ids, include_inactive=True)).values())
                await self._apply(org, rows, summary, cause, full=False)
                return summary
            start = await open_feed(self.deps, company, org, KIND, ["Item"], full_requested=mode == "full")
            summary = Summary(KIND, start.mode, start.reason)
            if start.cdc is not None:
                rows = start.cdc.changed("Item")  # items are never deleted in QuickBooks, only made inactive
            else:
                query = QboQuery.select("Item").where("Active", "IN", [True, False]).order_by("Id")
                rows = [row async for row in company.query_all(query)]
            await self._apply(org, rows, summary, cause, full=start.cdc is None)
            await commit_watermark(self.deps, org, KIND, start, summary)
            return summary

    async def _apply(
        self, org: UUID, rows: Sequence[dict[str, Any]], summary: Summary, cause: AnyEnvelope | None, *, full: bool
    ) -> None:
        async with self.deps.db.connect() as conn:
            catalog = Catalog(await store.batchly_catalog(conn, org))
            previous = await store.object_states(conn, org, kind="item")
        now = datetime.now(UTC)
        planned = [p for row in rows if (p := self._plan(org, parse_item(row), catalog, previous, cause, now))]
        if full:  # a reload proves what QuickBooks no longer has: Batchly stops using it
            present = {str(row.get("Id")) for row in rows}
            planned += [
                self._vanished(org, qbo_id, state, cause, now)
                for qbo_id, state in sorted(previous.items())
                if qbo_id not in present and state.active
            ]
        summary.read += len(rows)
        summary.changes.update(p.change for p in planned)

        async def record(conn: AsyncConnection, batch: Sequence[_Planned]) -> None:
            await store.save_object_states(conn, org, kind="item", states={p.qbo_id: p.state for p in batch}, now=now)

        await publish_batches(self.deps, planned, lambda p: p.envelope, record)

    def _plan(
        self,
        org: UUID,
        item: QboItem,
        catalog: Catalog,
        previous: dict[str, store.StoredState],
        cause: AnyEnvelope | None,
        now: datetime,
    ) -> _Planned | None:
        batchly_id, how = catalog.match(item)
        before = previous.get(item.qbo_id)
        change, digest, active = plan_item(
            item,
            batchly_id,
            how,
            Published(before.fingerprint, before.active) if before else None,
            include_inactive=self.deps.settings.include_inactive_items,
        )
        if change is None:
            return None
        version = events.next_version(before.version if before else None, item.last_updated, now)
        payload = ItemChangedPayload(
            change=change,
            qbo_item_id=item.qbo_id,
            name=item.name,
            sku=item.sku,
            description=item.description,
            unit_price=item.unit_price,
            qbo_item_type=qbo_item_type(item, before.payload.get("qbo_item_type") if before else None),
            income_account_id=item.income_account_id,
            income_account_name=item.income_account_name,
            active=active,
            batchly_item_id=batchly_id,
            match=how,
            qbo_last_updated=item.last_updated or now,
        )
        envelope = events.item_changed(org, payload, version=version, digest=digest, cause=cause)
        return _Planned(item.qbo_id, change, envelope, store.StoredState(digest, active, version, _json(payload)))

    @staticmethod
    def _vanished(
        org: UUID, qbo_id: str, state: store.StoredState, cause: AnyEnvelope | None, now: datetime
    ) -> _Planned:
        payload = ItemChangedPayload.model_validate_json(
            json.dumps({**state.payload, "change": "deactivated", "active": False, "qbo_last_updated": now.isoformat()})
        )
        digest = f"vanished:{state.fingerprint}"
        version = events.next_version(state.version, now, now)
        envelope = events.item_changed(org, payload, version=version, digest=digest, cause=cause)
        return _Planned(qbo_id, "deactivated", envelope, store.StoredState(digest, False, version, _json(payload)))


def _json(payload: ItemChangedPayload) -> dict[str, Any]:
    return payload.model_dump(mode="json")
