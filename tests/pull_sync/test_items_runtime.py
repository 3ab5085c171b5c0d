"""Items end to end: 2,500 QuickBooks items of every type, some inactive, pulled with paging; only active Inventory
and Service items reach Batchly, matched by SKU or by Name; the rare push; the change feed past its 1,000 cap; a full
reload when the watermark is too old."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pull_sync import store
from qbo_emulator.accounting import Accounting
from qbo_emulator.entities import BY_NAME
from qbsync.contracts.batchly import ItemCreated, ItemPayload, SyncItemsRequested
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import Kafka
from tests.pull_sync.harness import Books, changes, command, create_topics, pull_sync_running

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

COUNT = 2_500
TYPES = ("Inventory", "Service", "NonInventory", "Category", "Group")


def _spec(i: int) -> tuple[str, bool, str | None]:
    """(type, active, sku) of generated item ``i``."""
    return TYPES[i % 5], i % 7 != 0, f"SKU-{i:04d}" if i % 2 == 0 else None


def _synced(i: int) -> bool:
    item_type, active, _ = _spec(i)
    return active and item_type in ("Inventory", "Service")


async def _accounts(books: Books) -> dict[str, str]:
    return {
        name: await books.id_of("Account", name)
        for name in ("Services", "Sales of Product Income", "Inventory Asset", "Cost of Goods Sold")
    }


def _seed_items(books: Books, accounts: dict[str, str]) -> None:
    counter = iter(range(COUNT))

    def create(acc: Accounting) -> dict[str, Any]:
        i = next(counter)
        item_type, active, sku = _spec(i)
        body: dict[str, Any] = {"Name": f"Item {i:04d}", "Type": item_type, "Active": active}
        if sku:
            body["Sku"] = sku
        if item_type in ("Service", "NonInventory", "Inventory"):
            body.update(UnitPrice=i / 4, IncomeAccountRef={"value": accounts["Services"]})
        if item_type == "Inventory":
            body.update(
                AssetAccountRef={"value": accounts["Inventory Asset"]},
                ExpenseAccountRef={"value": accounts["Cost of Goods Sold"]},
                QtyOnHand=10,
                InvStartDate="2026-01-01",
            )
        return books.create_item(acc, body)

    books.bulk(create, COUNT)


def _item_created(org: uuid.UUID, payload: ItemPayload) -> ItemCreated:
    return ItemCreated(
        event_id=uuid.uuid4(),
        event_type="ItemCreated",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=payload.item_id,
        entity_version=1,
        payload=payload,
    )


def _reprice(books: Books, ids: list[str], price: float) -> None:
    pending = iter(ids)

    def change(acc: Accounting) -> dict[str, Any]:
        item = acc.company.get("Item", next(pending))
        assert item is not None
        body = {"Id": item["Id"], "SyncToken": item["SyncToken"], "sparse": True, "UnitPrice": price}
        result: dict[str, Any] = acc.update(BY_NAME["Item"], body)
        return result

    books.bulk(change, len(ids))


async def test_items_of_every_type_are_pulled_with_paging_and_only_the_right_ones_published(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    books = Books(emulator_server)
    _seed_items(books, await _accounts(books))
    # The catalogue was set up well before the first sync: 2,500 changes in one second are more than the change
    # feed's 1,000 cap can split, so a feed read over them would (correctly) fall back to a full reload.
    async with httpx.AsyncClient(timeout=10) as admin:
        await admin.post(
            f"{emulator_server.base_url}/_admin/clock", json={"advance_s": 900}
        )  # past the 5-minute overlap
    qbo_id = {r["Name"]: str(r["Id"]) for r in await books.rows("Item")}
    by_sku = ItemPayload(item_id=uuid.uuid4(), name="Country Loaf", sku="sku-0010", unit_price=Decimal("5"))
    by_name = ItemPayload(item_id=uuid.uuid4(), name="item 0001", unit_price=Decimal("1"))
    new = ItemPayload(item_id=uuid.uuid4(), name="Fresh Delivery", sku="DLV-1", unit_price=Decimal("15.5"))
    product = ItemPayload(
        item_id=uuid.uuid4(), name="Rye Flour", unit_price=Decimal("3.25"), item_type="product", taxable=False
    )
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(
            emulator_server, [books], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            # Batchly's items: two already in QuickBooks (linked, not duplicated), two new ones (created)
            invalid = ItemPayload(item_id=uuid.uuid4(), name="Bread: Rye", unit_price=Decimal("4"))
            pushes = [_item_created(books.org, p) for p in (by_sku, by_name, new, product, invalid)]
            await kafka.publish(*pushes)
            outcomes = [await rt.finished(p.event_id) for p in pushes]
            assert [(o.status, o.action) for o in outcomes] == [
                ("completed", "linked"),
                ("completed", "linked"),
                ("completed", "created"),
                ("completed", "created"),
                ("failed", None),
            ]
            assert (outcomes[4].error_class, outcomes[4].attempts) == ("permanent", 1)
            assert "name: must not contain ':'" in outcomes[4].error_message
            assert outcomes[0].qbo_id == qbo_id["Item 0010"], "linked by SKU (case-insensitively)"
            assert outcomes[1].qbo_id == qbo_id["Item 0001"], "linked by Name"
            rows = {r["Name"]: r for r in await books.rows("Item")}
            assert len(rows) == COUNT + 2 + 2, "two defaults, two created, nothing duplicated"
            assert rows["Fresh Delivery"]["Type"] == "Service"
            assert (rows["Rye Flour"]["Type"], rows["Rye Flour"]["QtyOnHand"]) == ("Inventory", 0)

            # the first pull: no watermark yet, so a full reload through query paging
            queries_before = (await books.stats())["by_operation"].get("query", 0)
            first = command(SyncItemsRequested, books.org, requested_by="test")
            await kafka.publish(first)
            done = await rt.finished(first.event_id, timeout=120)
            assert done.status == "completed"
            assert "full: first run" in done.warnings[0]["message"]
            assert (await books.stats())["by_operation"]["query"] - queries_before >= 3, "2,500+ rows: 3 pages"
            expected = {qbo_id[f"Item {i:04d}"] for i in range(COUNT) if _synced(i)}
            expected |= {rows[n]["Id"] for n in ("Services", "Hours", "Fresh Delivery", "Rye Flour")}
            found = await changes(kafka, "ItemChanged", at_least=len(expected))
            published = {d["payload"]["qbo_item_id"]: d["payload"] for d in found}
            assert len(found) == len(expected), "each item once"
            assert set(published) == expected, "only active Inventory and Service items"
            assert {p["change"] for p in published.values()} == {"created"}
            assert {p["qbo_item_type"] for p in published.values()} == {"Inventory", "Service"}
            item10 = published[qbo_id["Item 0010"]]
            assert (item10["match"], item10["batchly_item_id"], item10["sku"]) == (
                "sku",
                str(by_sku.item_id),
                "SKU-0010",
            )
            item1 = published[qbo_id["Item 0001"]]
            assert (item1["match"], item1["batchly_item_id"]) == ("name", str(by_name.item_id))
            fresh = published[rows["Fresh Delivery"]["Id"]]
            assert (fresh["match"], fresh["batchly_item_id"], fresh["unit_price"]) == (
                "sku",
                str(new.item_id),
                "15.50000",
            )
            item5 = published[qbo_id["Item 0005"]]
            assert (item5["unit_price"], item5["income_account_name"]) == ("1.25000", "Services")
            assert published[qbo_id["Item 0020"]]["match"] == "none"
            assert qbo_id["Item 0000"] not in published, "inactive"

            # the accountant edits a few items; the next pull reads the change feed
            async with httpx.AsyncClient(base_url=f"{emulator_server.base_url}/_admin", timeout=10) as admin:
                for name, change in (("Item 0005", {"unit_price": 9.99}), ("Item 0006", {"active": False})):
                    await admin.post(f"/companies/{books.realm}/accountant/items/{qbo_id[name]}", json=change)
                await admin.post(
                    f"/companies/{books.realm}/accountant/items/{qbo_id['Item 0002']}", json={"unit_price": 1}
                )
                await admin.post(
                    f"/companies/{books.realm}/accountant/items/{qbo_id['Item 0035']}", json={"active": True}
                )
            second = command(SyncItemsRequested, books.org)
            await kafka.publish(second)
            done = await rt.finished(second.event_id)
            assert "(incremental)" in done.warnings[0]["message"], done.warnings
            found = await changes(kafka, "ItemChanged", at_least=len(expected) + 3)
            later = {d["payload"]["qbo_item_id"]: d["payload"] for d in found[len(expected) :]}
            assert len(found) == len(expected) + 3
            assert later[qbo_id["Item 0005"]]["change"] == "updated"
            assert later[qbo_id["Item 0005"]]["unit_price"] == "9.99000"
            assert (later[qbo_id["Item 0006"]]["change"], later[qbo_id["Item 0006"]]["active"]) == (
                "deactivated",
                False,
            )
            assert later[qbo_id["Item 0035"]]["change"] == "created", "reactivated, never published before"
            assert qbo_id["Item 0002"] not in later, "a NonInventory item never reaches Batchly"

            # more than 1,000 changes: the change feed is read in windows past its cap
            repriced = [f"Item {i:04d}" for i in range(1_200)]
            async with httpx.AsyncClient(base_url=f"{emulator_server.base_url}/_admin", timeout=10) as admin:
                for start in range(0, len(repriced), 100):
                    _reprice(books, [qbo_id[n] for n in repriced[start : start + 100]], 2.5)
                    await admin.post("/clock", json={"advance_s": 1})
            cdc_before = (await books.stats())["by_operation"].get("cdc", 0)
            third = command(SyncItemsRequested, books.org)
            await kafka.publish(third)
            done = await rt.finished(third.event_id, timeout=120)
            assert "(incremental)" in done.warnings[0]["message"], "read from the feed, not reloaded"
            assert (await books.stats())["by_operation"]["cdc"] - cdc_before >= 2, "more than one window"
            now_synced = {qbo_id[n] for n in repriced if _synced(int(n[-4:]))}
            now_synced -= {qbo_id["Item 0006"], qbo_id["Item 0010"]}  # inactive now; already priced 2.50
            now_synced.add(qbo_id["Item 0035"])
            total = len(expected) + 3 + len(now_synced)
            found = await changes(kafka, "ItemChanged", at_least=total)
            assert len(found) == total
            assert {d["payload"]["qbo_item_id"] for d in found[len(expected) + 3 :]} == now_synced

            # a watermark older than the change feed reaches: everything is reloaded, nothing is news
            async with rt.db.transaction() as conn:
                await conn.execute(
                    update(store.pull_watermarks)
                    .where(store.pull_watermarks.c.organization_id == books.org)
                    .values(changed_since=datetime.now(UTC) - timedelta(days=31))
                )
            fourth = command(SyncItemsRequested, books.org)
            await kafka.publish(fourth)
            done = await rt.finished(fourth.event_id, timeout=120)
            assert "full: last read more than 30 days ago" in done.warnings[0]["message"]
            assert done.action == "unchanged"
            assert len(await changes(kafka, "ItemChanged", at_least=total)) == total
