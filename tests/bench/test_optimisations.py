"""Regression tests of the fixes the benchmark's profiles led to (``docs/performance.md``, "Optimisations").

They assert behaviour (how many requests QuickBooks sees), never speed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from invoice_sync import store
from invoice_sync.config import InvoiceSyncSettings
from invoice_sync.references import References
from qbsync.contracts.batchly import DocumentLine
from qbsync.persistence import Database
from qbsync.qbo import QboClient, QboClientSettings, StaticTokenProvider
from tests.fixtures.emulator import EmulatorHandle
from tests.invoice_sync.support import invoice_sync_database

pytestmark = pytest.mark.bench

SKUS = ("BNC-FLOUR", "BNC-SUGAR", "BNC-SALT")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with invoice_sync_database(tmp_path) as database:
        yield database


def _line(number: int, sku: str) -> DocumentLine:
    # A fresh Batchly item id per line: none is linked, so every line resolves by SKU (QuickBooks NonInventory items
    # are not published by pull-sync and are found this way in production too).
    return DocumentLine(
        line_number=number,
        item_id=uuid.uuid4(),
        sku=sku,
        quantity=Decimal(1),
        unit_price=Decimal("2.00"),
        amount=Decimal("2.00"),
    )


async def test_a_burst_of_invoices_looks_all_their_skus_up_in_quickbooks_in_one_query(
    emulator: EmulatorHandle, db: Database
) -> None:
    """60 invoices of one company in flight at once, one to three SKUs each, none known yet: one look-up.

    Before the first fix a found SKU was dropped from the single-flight cache as soon as it was stored, so every
    invoice that had read the (still empty) table before the row was stored asked QuickBooks again (dozens of
    look-ups); before the second, each SKU was one query, and an invoice asked for its SKUs one after the other.
    """
    from qbo_emulator.accounting import Accounting
    from qbo_emulator.context import WriteContext
    from qbo_emulator.entities import BY_NAME

    realm = emulator.create_company(name="Burst Co")
    company = emulator.core.company(realm)
    assert company is not None
    income = next(str(r["Id"]) for r in company.rows("Account") if r.get("Name") == "Services")
    accounting = Accounting(WriteContext(company, emulator.core.config.fidelity, datetime.now(UTC)))
    ids = {
        sku: str(
            accounting.create(BY_NAME["Item"], {"Name": sku, "Sku": sku, "IncomeAccountRef": {"value": income}})["Id"]
        )
        for sku in SKUS
    }
    org = uuid.uuid4()
    qbo = QboClient(
        QboClientSettings(base_url="http://qbo.test"),
        StaticTokenProvider({org: (realm, emulator.issue_tokens(realm)["access_token"])}),
        transport=httpx.ASGITransport(app=emulator.app),
    )
    references = References(qbo, InvoiceSyncSettings())
    try:
        documents = [SKUS[i % 3 :] for i in range(60)]  # all three, the last two, the last one
        resolved = await asyncio.gather(
            *(references.item_ids(db, org, [_line(n + 1, sku) for n, sku in enumerate(skus)]) for skus in documents)
        )
    finally:
        await qbo.aclose()

    assert resolved == [tuple(ids[sku] for sku in skus) for skus in documents]
    assert emulator.core.realm_stats(realm).as_dict()["by_operation"].get("query") == 1
    async with db.connect() as conn:
        stored = await store.get_item_skus(conn, org, list(SKUS))
    assert {sku: link.qbo_item_id for sku, link in stored.items()} == ids, "the table knows them from now on"


def test_invoice_sync_bounds_its_buffer_to_a_few_in_flight_windows() -> None:
    """Under a backlog the buffer, not the work in flight, decides the service's memory: decoded invoices (~12 KB
    each) waiting ahead of the workers. invoice-sync keeps 256 per partition (two in-flight windows) — enough to
    keep the workers fed between fetches, and ~160 MB instead of ~230 MB under a 30,000-invoice backlog. 128 in flight
    per partition: a company's bulk reaches QuickBooks' ceiling (64 held it at half)."""
    from invoice_sync.app import definition
    from qbsync.settings import RuntimeSettings

    defaults = definition.runtime_defaults
    runtime = RuntimeSettings().model_copy(update=defaults)
    assert runtime.max_in_flight_per_partition == 128
    assert runtime.max_buffered_per_partition == 2 * runtime.max_in_flight_per_partition
    assert runtime.max_buffered_per_partition < RuntimeSettings().max_buffered_per_partition
