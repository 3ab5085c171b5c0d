"""The rare push (seed §2): an item created in Batchly is created in QuickBooks and its QuickBooks id returned.

Every ``ItemCreated`` is first remembered as one of Batchly's items (what the pulls match QuickBooks items
against), whatever happens next. Then: an existing QuickBooks item with the same SKU, else the same Name (inactive
ones too), is linked instead of duplicated — which is also what makes a retry after an uncertain create safe; else
the item is created with a ``requestid`` derived from the event (QuickBooks replays a repeated create).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import store
from pull_sync.deps import Deps
from qbsync.contracts.batchly import ItemCreated, ItemPayload
from qbsync.contracts.outbound import SyncWarning
from qbsync.domain.items import SYNCED_TYPES, match_key, new_item_body, validate_new_item
from qbsync.domain.schedule import local_today
from qbsync.persistence.organizations import get_organization
from qbsync.qbo import QboCompany, QboDuplicateNameError, QboQuery, request_id
from qbsync.runtime import AuthLost, Completed, HandlerContext, PermanentError
from qbsync.runtime import ledger as runtime_ledger

__all__ = ["ItemPush"]

Row = dict[str, Any]
_INCOME_SUBTYPE = {"product": "SalesOfProductIncome", "service": "ServiceFeeIncome"}


class ItemPush:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def on_created(self, ctx: HandlerContext, event: ItemCreated) -> Completed:
        item, org = event.payload, event.organization_id
        async with self.deps.db.transaction() as conn:
            await store.remember_batchly_item(
                conn,
                org,
                item.item_id,
                name=item.name,
                sku=item.sku,
                version=event.entity_version,
                now=datetime.now(UTC),
            )
            lost = await runtime_ledger.connection_state(conn, org) == "lost"
        if lost:  # remembered for matching; the push itself waits for the reconnect
            raise AuthLost("the organization's QuickBooks connection is lost", code="auth_lost")
        problems = validate_new_item(item)
        if problems:
            raise PermanentError(
                f"item failed pre-sync validation: {'; '.join(map(str, problems))}",
                code="validation",
                field=problems[0].field,
                hint="Correct the item in Batchly; QuickBooks item names are unique and at most 100 characters.",
            )
        company = self.deps.qbo.company(org)
        existing = await self._find(company, item)
        action: Literal["created", "linked"] = "linked"
        if existing is None:
            body = await self._body(company, org, item)
            try:
                existing = await company.create("Item", body, request_id=request_id(event.event_id, "item.create"))
                action = "created"
            except QboDuplicateNameError:  # created meanwhile (or by an uncertain earlier attempt): link it
                existing = await self._by(company, "Name", item.name.strip())
                if existing is None:
                    raise
        qbo_id = str(existing["Id"])
        warnings = []
        if existing.get("Type") not in SYNCED_TYPES:
            warnings.append(
                SyncWarning(
                    code="item_type_not_synced",
                    message=f"linked to QuickBooks {existing.get('Type')} item {qbo_id}; only Inventory and Service "
                    "items come back from QuickBooks",
                )
            )

        async def persist(conn: AsyncConnection) -> None:
            await store.set_batchly_item_link(conn, org, item.item_id, qbo_id)

        return Completed(action=action, qbo_id=qbo_id, warnings=warnings, persist=persist)

    async def _find(self, company: QboCompany, item: ItemPayload) -> Row | None:
        """The QuickBooks item this Batchly item already is: same SKU first, then same Name (seed: match by SKU,
        then Name)."""
        if item.sku and item.sku.strip():
            by_sku = await self._by(company, "Sku", item.sku.strip())
            if by_sku is not None:
                return by_sku
        return await self._by(company, "Name", item.name.strip())

    @staticmethod
    async def _by(company: QboCompany, field: str, value: str) -> Row | None:
        query = QboQuery.select("Item").where(field, "=", value).where("Active", "IN", [True, False])
        rows = (await company.query(query)).rows
        wanted = match_key(value)
        exact = [r for r in rows if match_key(str(r.get(field) or "")) == wanted]
        return min(exact, key=lambda r: int(r["Id"]) if str(r["Id"]).isdigit() else 0) if exact else None

    async def _body(self, company: QboCompany, org: UUID, item: ItemPayload) -> Row:
        income = await self._income_account(company, item)
        if item.item_type != "product":
            return new_item_body(item, income_account_id=income)
        asset = await self._account(company, "AccountSubType", "Inventory")
        expense = await self._account(company, "AccountType", "Cost of Goods Sold")
        if asset is None or expense is None:
            raise PermanentError(
                "QuickBooks has no inventory asset or cost-of-goods-sold account for an Inventory item",
                code="account_missing",
                hint="Ask the accountant to turn on inventory tracking in QuickBooks (it creates both), then retry.",
            )
        async with self.deps.db.connect() as conn:
            start = local_today(self.deps.clock(), (await get_organization(conn, org)).timezone)
        return new_item_body(
            item, income_account_id=income, asset_account_id=asset, expense_account_id=expense, start_date=start
        )

    async def _income_account(self, company: QboCompany, item: ItemPayload) -> str:
        if item.income_account_name:
            named = await self._account(company, "Name", item.income_account_name.strip())
            if named is None:
                raise PermanentError(
                    f"QuickBooks has no active account named {item.income_account_name!r}",
                    code="account_missing",
                    field="income_account_name",
                    hint="Use the name of an income account that exists in QuickBooks, or leave it empty.",
                )
            return named
        preferred = await self._account(company, "AccountSubType", _INCOME_SUBTYPE[item.item_type])
        fallback = preferred or await self._account(company, "AccountType", "Income")
        if fallback is None:
            raise PermanentError(
                "QuickBooks has no income account for the item", code="account_missing", field="income_account_name"
            )
        return fallback

    @staticmethod
    async def _account(company: QboCompany, field: str, value: str) -> str | None:
        rows = (await company.query(QboQuery.select("Account").where(field, "=", value).order_by("Id"))).rows
        return str(rows[0]["Id"]) if rows else None
