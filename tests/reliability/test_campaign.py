"""Issue 9: the reduced fault-injection campaign in the default test run (the full one: ``make reliability``).

Four services as separate processes on the session's broker, every one SIGKILLed and restarted at a seeded moment,
every fault kind of the emulator injected once, one revocation with a reconnect, the accountant's payments pulled
back — then the accounting pass (``tests/reliability/accounting.py``) must find nothing: one terminal outcome per
event, no duplicate or orphan QuickBooks row, no total mismatch, no lost token, parked work resumed, only the
generator's bad records dead-lettered, no secret in any log, no crash.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.reliability.accounting import account
from tests.reliability.campaign import run_campaign
from tests.reliability.scenario import PROFILES

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(420)]


def test_reduced_campaign_loses_duplicates_and_leaks_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = asyncio.run(run_campaign(PROFILES["reduced"], kafka_bootstrap, tmp_path))
    accounting = account(run)
    print("\n" + accounting.report())  # the figures, for the record (pytest -s shows them)

    figures = accounting.figures
    # the campaign did what it says: every service killed, every fault kind met, traffic of every kind
    assert set(run.chaos.kills) == {"token-manager", "customer-sync", "invoice-sync", "pull-sync"}
    assert sum(run.chaos.faults_fired.values()) > 0
    assert {"outage_503_json", "outage_502_html", "throttle_429", "drop_after_write"} <= {
        kind for kind, fired in run.chaos.faults_fired.items() if fired
    }
    assert run.chaos.revocations == 1
    assert figures["events"] == PROFILES["reduced"].events
    assert figures["accountant_payments"].startswith(str(PROFILES["reduced"].accountant_payments))
    # and nothing was lost, duplicated, mismatched or leaked
    assert accounting.ok, accounting.report()
    assert figures["duplicates"] == 0
    assert figures["total_mismatches"] == 0
    assert figures["leaks"] == 0
    assert figures["lost_tokens"] == 0
