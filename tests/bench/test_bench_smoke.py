"""The benchmark's smoke form (``make bench-smoke``) in the default test run: every scenario at small sizes.

It proves the harness works end to end — stacks start, events flow, the baselines run, the report is complete and
well-formed — and asserts nothing about speed: figures from a shared test machine mean nothing, and the targets are
shown by the full run's report (``docs/performance.md``), never by a test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.__main__ import main
from tests.bench.report import validate
from tests.bench.scenarios import SMOKE

pytestmark = [pytest.mark.bench, pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.timeout(420)
def test_smoke_run_completes_with_a_well_formed_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    exit_code = main(["--smoke", "--out", str(out), "--workdir", str(tmp_path / "work")])

    report = json.loads(out.read_text())
    assert validate(report) == []
    assert exit_code == 0
    assert report["meta"]["mode"] == "smoke"
    qbo, plat = report["scenarios"]["qbo_bound"], report["scenarios"]["platform"]
    # Every published invoice reached exactly one terminal result, and each was created in QuickBooks.
    assert qbo["seed_test"]["outcomes"] == {"created": SMOKE.seed_test_invoices}
    assert qbo["bulk"]["outcomes"] == {"created": SMOKE.bulk_invoices}
    for run in (plat["one_instance"], plat["two_instances"]):
        assert run["outcomes"] == {"created": SMOKE.platform_orgs * SMOKE.platform_invoices_per_org}
        assert run["duplicate_results"] == 0
    assert plat["backlog"]["queued"] == SMOKE.backlog_events
    assert plat["backlog"]["samples"], "the service's memory was sampled while it worked through the backlog"
    # The baselines wrote the same invoices to QuickBooks (the emulator), one call at a time.
    assert qbo["baselines"]["seed_design"]["measured_synced"] == SMOKE.seed_design_queued
    assert qbo["baselines"]["sequential_library"]["synced"] == SMOKE.sequential_invoices
    # Every target has a figure (met, missed, or reported) — none is "not measured".
    assert [t for t in report["targets"] if t["measured"] == "not measured"] == []
