"""Contract: CDC windowing past the per-entity cap against the emulator (cap scaled down from 1000 to 50)."""

from __future__ import annotations

from datetime import datetime

import pytest

from qbo_emulator import EmulatorConfig
from qbo_emulator.config import FidelityConfig
from qbsync.qbo import BatchOperation, QboClient
from tests.qbo_client.conftest import Live, client_settings

CAP = 50


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(fidelity=FidelityConfig(cdc_max_objects=CAP))


async def test_cdc_collects_every_change_past_the_cap_in_windows(live: Live) -> None:
    since = datetime.fromisoformat((await live.admin.get("/_admin/clock")).json()["now"])
    names = []
    for second in range(5):  # 5 x 26 customers, one emulator second apart (QBO stamps have whole seconds)
        ops = [BatchOperation.create("Customer", {"DisplayName": f"CDC {second}-{n:02d}"}) for n in range(26)]
        names += [op.body["DisplayName"] for op in ops if op.body]
        results = await live.company.batch(ops, request_id_prefix=f"cdc-load-{second}")
        assert all(r.ok for r in results)
        await live.admin.post("/_admin/clock", json={"advance_s": 1})

    settings = client_settings(live.server.base_url, cdc_object_cap=CAP)
    async with QboClient(settings, live.tokens) as client:
        result = await client.company(live.organization_id).cdc(["Customer", "Invoice"], since)

    assert result.complete
    customers = result.changed("Customer")
    assert sorted(row["DisplayName"] for row in customers) == sorted(names)  # all 130, each once
    assert len({row["Id"] for row in customers}) == 130
    assert result.windows >= 130 // CAP + 1
