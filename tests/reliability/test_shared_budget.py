"""Issue 9, shared budget under load: customer, invoice and pull work for one company at once never causes a 429.

The emulator enforces QBO's limits — scaled to a 6-second window so the test is short: 50 requests, 12 batch requests
and 10 in flight per window (QBO: 500 / 120 / 10 per minute) — and every service gets the same scaled budget
(``QBSYNC_QBO__REQUESTS_PER_WINDOW=45``, ``…WINDOW_S=6``, QBO's default 450 of 500 scaled), shared by
``settings.qbo_budget``. Then, for one company at once: 20 customers created and 10 updated (customer-sync), 30 invoices
(invoice-sync), "Sync Items Now" and "Sync Payments Now" and webhooks for every change (pull-sync). The
emulator's own counters must show the load pressed the budget (a window at 60 % or more of the limit) and that it
served no 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import DEFAULT_CATALOG, BatchlyWorld, WorldConfig
from qbsync_cli.ops.manual import command_for
from tests.e2e.platform import Platform, platform
from tests.reliability.kafka_io import produce, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

WINDOW_S = 6.0
EMULATOR_LIMITS = {"requests_per_window": 50, "window_s": WINDOW_S, "batch_requests_per_window": 12}
SCALED_BUDGET = {
    "QBSYNC_QBO__REQUESTS_PER_WINDOW": "45",
    "QBSYNC_QBO__BATCH_REQUESTS_PER_WINDOW": "10",
    "QBSYNC_QBO__WINDOW_S": str(WINDOW_S),
    # invoices wait for their customers, which the budget slows down: a ladder long enough for that (about a minute)
    "QBSYNC_RUNTIME__RETRY_DELAYS_SECONDS": "[2, 4, 8, 15, 30]",
}


@pytest.fixture
def plat(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Platform]:
    with platform(kafka_bootstrap, tmp_path) as p:
        yield p


def _catalog(plat: Platform, realm: str) -> None:
    accounts = {a["Name"]: a["Id"] for a in plat.rows(realm, "Account")}
    for item in DEFAULT_CATALOG:
        body = item.qbo_item_body(accounts)
        plat.admin(
            "POST", f"/companies/{realm}/accountant/write", json={"entity": "Item", "operation": "create", "body": body}
        )


async def _sample(plat: Platform, realm: str, stop: asyncio.Event) -> list[tuple[float, int]]:
    """(monotonic time, requests served so far) every 0.5 s, from the emulator's counters."""
    assert plat.emulator is not None
    samples: list[tuple[float, int]] = []
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            stats = (await http.get(f"{plat.emulator.url}/_admin/companies/{realm}/stats")).json()
            samples.append((time.monotonic(), int(stats["requests"])))
            await asyncio.sleep(0.5)
    return samples


def _peak_window(samples: list[tuple[float, int]]) -> int:
    """The most requests served within any WINDOW_S seconds (from the samples)."""
    peak = 0
    for i, (t0, n0) in enumerate(samples):
        later = [n for t, n in samples[i:] if t - t0 <= WINDOW_S]
        peak = max(peak, later[-1] - n0)
    return peak


def test_customer_invoice_and_pull_work_for_one_company_stays_under_qbos_limits(
    kafka_bootstrap: str, plat: Platform
) -> None:
    plat.start_emulator("--webhook-window-s", "0.2")
    plat.admin("PUT", "/limits", json=EMULATOR_LIMITS)
    world = BatchlyWorld(
        23, start=datetime.now(UTC) - timedelta(days=1), config=WorldConfig(hard_case_share=0, invalid_share=0)
    )
    org = world.add_organization(customer_update_mode="immediate")
    realm = plat.create_company(name=org.payload.name)
    _catalog(plat, realm)
    plat.start("token-manager", **SCALED_BUDGET)
    plat.connect(org.entity_id, realm)
    for name in ("customer-sync", "invoice-sync", "pull-sync"):
        plat.start(name, **SCALED_BUDGET)
    plat.admin("POST", "/webhooks", json={"url": f"{plat.processes['pull-sync'].url}/webhooks/quickbooks"})

    customers: list[AnyEnvelope] = [world.create_customer(org.entity_id) for _ in range(20)]
    updates: list[AnyEnvelope] = [world.update_customer(c.entity_id, change="phone") for c in customers[:10]]
    invoices: list[AnyEnvelope] = [world.create_invoice(org.entity_id) for _ in range(30)]
    pulls: list[AnyEnvelope] = [
        command_for(kind, org.entity_id, requested_by="budget-test") for _ in range(3) for kind in ("items", "payments")
    ]
    wanted = {e.event_id for e in [*customers, *updates, *invoices]}

    async def scenario() -> tuple[list[tuple[float, int]], list[dict[str, Any]]]:
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample(plat, realm, stop))
        await produce(kafka_bootstrap, plat.prefix, [(e, None) for e in [org, *customers]])
        await asyncio.sleep(3)  # customers first (invoices need them), then everything at once
        await produce(kafka_bootstrap, plat.prefix, [(e, None) for e in [*updates, *invoices, *pulls]])

        def settled(documents: list[dict[str, Any]]) -> bool:
            done = {
                d["payload"].get("source_event_id")
                for d in documents
                if d["event_type"] in ("SyncCompleted", "SyncFailed")
                or d["payload"].get("status") in ("ignored", "pending")
            }
            return {str(i) for i in wanted} <= done

        results = await read_topic(kafka_bootstrap, plat.prefix + "qbsync.sync-results", settled, timeout=240)
        stop.set()
        return await sampler, results

    samples, results = asyncio.run(scenario())
    stats = plat.admin("GET", f"/companies/{realm}/stats")
    completed = {d["payload"]["source_event_id"] for d in results if d["event_type"] == "SyncCompleted"} & {
        str(i) for i in wanted
    }
    peak = _peak_window(samples)
    print(f"\nshared budget: {stats['requests']} requests, peak {peak} in {WINDOW_S:.0f} s, 429s {stats['throttled']}")
    assert len(completed) == len(wanted), "every customer and invoice synced"
    assert peak >= 0.6 * EMULATOR_LIMITS["requests_per_window"], f"the load pressed the budget (peak {peak})"
    assert stats["throttled"] == 0, stats
    assert stats["by_status"].get("429", 0) == 0, stats
