"""The benchmark's scenarios, in two stacks (each with its own emulator, topic prefix and databases).

* :func:`qbo_bound` — QuickBooks' limits on, 250 ms median latency with a tail: the seed's test (100 invoices), the
  per-company bulk (3,000 invoices) and, on the same emulator, the two baselines.
* :func:`platform` — zero latency, limits off, so only qbsync's own cost shows: 20,000 invoices over 200 companies
  with one invoice-sync, latency at about half that rate, the same again with two instances (scale-out), and a
  100,000-event backlog while the memory of the service is sampled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from qbsync.contracts.batchly import InvoiceCreated
from qbsync.settings import Settings
from tests.bench.baselines.seed_design import SeedQueueWorker
from tests.bench.baselines.sequential import connect_library, run_sequential
from tests.bench.kafka import ResultCollector, publish
from tests.bench.measure import cpu_per_thousand, timed_sync
from tests.bench.stack import BenchStack, ProcessStats
from tests.bench.world import BenchOrg, BenchWorld, baseline_company, set_up_platform

__all__ = ["QBO_BATCH_CEILING_PER_MIN", "Sizes", "platform", "qbo_bound"]

SERVICES = ("token-manager", "customer-sync", "pull-sync", "invoice-sync")
#: QuickBooks' per-company ceiling for invoice creation: 120 batch requests/min x 30 items (500 requests/min overall).
QBO_BATCH_CEILING_PER_MIN = 120 * 30


def _invoice_sync_batch_budget_per_min() -> int:
    """invoice-sync's configured share of it: ``qbo_budget`` applied to the client's ``batch_requests_per_window``
    (100 by default, a margin under QBO's 120), x 30 items — 90 x 30 = 2,700 invoices/min with the defaults."""
    settings = Settings()
    return settings.qbo_budget.for_service(settings.qbo, "invoice-sync").batch_requests_per_window * 30


QBSYNC_BATCH_SHARE_PER_MIN = _invoice_sync_batch_budget_per_min()
LIMITS = "on (500 requests/min, 10 in flight, 120 batch requests/min per company)"
LATENCY_ARGS = ("--latency-median-ms", "250", "--latency-p99-ms", "1200", "--latency-seed", "7")
#: Consumer-group timings of the e2e tests: a joining instance gets its partitions within seconds.
GROUP_ENV = {"QBSYNC_KAFKA__SESSION_TIMEOUT_MS": "6000", "QBSYNC_KAFKA__HEARTBEAT_INTERVAL_MS": "1000"}
Log = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is. ``FULL`` is issue 10's; ``SMOKE`` proves the harness in about two minutes."""

    seed_test_invoices: int = 100
    bulk_invoices: int = 3_000
    qbo_customers_per_org: int = 40
    seed_design_queued: int = 50  # one full pass of the seed's worker is measured (50 calls, one at a time)
    sequential_invoices: int = 100
    platform_orgs: int = 200
    platform_invoices_per_org: int = 100
    platform_customers_per_org: int = 5
    latency_seconds: float = 30.0  # 0: no latency run
    scale_out: bool = True  # the run with two instances of invoice-sync
    backlog_events: int = 100_000
    backlog_orgs: int = 50
    backlog_sample_seconds: float = 90.0
    timeout_s: float = 1_800.0  # per timed batch: 20,000 invoices at ~20/s on shared cores take ~17 minutes


FULL = Sizes()
SMOKE = Sizes(
    seed_test_invoices=20,
    bulk_invoices=90,
    qbo_customers_per_org=4,
    seed_design_queued=5,
    sequential_invoices=5,
    platform_orgs=4,
    platform_invoices_per_org=25,
    platform_customers_per_org=2,
    latency_seconds=4.0,
    backlog_events=1_000,
    backlog_orgs=4,
    backlog_sample_seconds=6.0,
    timeout_s=120.0,
)


# ---- QuickBooks-bound: limits on, 250 ms median latency -------------------------------------------------------------
async def qbo_bound(
    bootstrap: str,
    workdir: Path,
    sizes: Sizes,
    log: Log,
    *,
    broker_pid: int | None = None,
    service_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The seed's test, the per-company bulk and both baselines, against one emulator."""
    env = GROUP_ENV | (service_env or {})
    stack = BenchStack(bootstrap, workdir / "qbo-bound", service_env=env, broker_pid=broker_pid)
    try:
        stack.start_emulator(*LATENCY_ARGS)
        for service in SERVICES:
            stack.start_service(service)
        bench = BenchWorld.build(seed=10, organizations=2, customers_per_org=sizes.qbo_customers_per_org)
        log("qbo-bound: setting up 2 companies")
        await set_up_platform(stack, bench)
        seed_org, bulk_org = bench.orgs
        set_up = {org.realm: stack.company_stats(org.realm) for org in bench.orgs}
        async with ResultCollector(stack.bootstrap, stack.prefix) as results:
            log(f"qbo-bound: the seed's test, {sizes.seed_test_invoices} invoices")
            seed = await timed_sync(
                stack, results, bench.invoices(sizes.seed_test_invoices, [seed_org]), timeout_s=sizes.timeout_s
            )
            log(f"qbo-bound: per-company bulk, {sizes.bulk_invoices} invoices")
            bulk = await timed_sync(
                stack, results, bench.invoices(sizes.bulk_invoices, [bulk_org]), timeout_s=sizes.timeout_s
            )
        bulk_stats = _since(set_up[bulk_org.realm], stack.company_stats(bulk_org.realm))
        seed_stats = _since(set_up[seed_org.realm], stack.company_stats(seed_org.realm))
        baselines = _baselines(stack, bench, seed_org, workdir / "qbo-bound", sizes, log)
        return {
            "conditions": {
                "latency": " ".join(LATENCY_ARGS),
                "limits": "on (500 req/min, 10 in flight, 120 batch/min)",
            },
            "seed_test": seed.summary()
            | {"throttled_429": _throttled(seed_stats), "by_operation": seed_stats["by_operation"]},
            "bulk": bulk.summary()
            | {
                "throttled_429": _throttled(bulk_stats),
                "qbo_requests": bulk_stats.get("requests"),
                "by_operation": bulk_stats.get("by_operation"),
                "ceiling_per_min": QBO_BATCH_CEILING_PER_MIN,
                "qbsync_share_per_min": QBSYNC_BATCH_SHARE_PER_MIN,
                "share_of_ceiling": round(bulk.per_s * 60 / QBO_BATCH_CEILING_PER_MIN, 3),
            },
            "baselines": baselines,
            "processes": {name: _stats(s) for name, s in stack.stats().items()},
        }
    finally:
        stack.close()


def _since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """A company's request counters between two snapshots (the set-up's requests taken out)."""
    operations = after["by_operation"]
    return {
        "requests": after["requests"] - before["requests"],
        "throttled": after["throttled"] - before["throttled"],
        "by_operation": {k: v - before["by_operation"].get(k, 0) for k, v in operations.items()},
    }


def _throttled(stats: dict[str, Any]) -> int:
    """429s the emulator served this company (the ``throttled`` counter of its stats)."""
    return int(stats["throttled"])


def _stats(stats: ProcessStats) -> dict[str, float]:
    return {
        "cpu_seconds": round(stats.cpu_seconds, 2),
        "peak_rss_mb": round(stats.peak_rss_bytes / 2**20, 1),
        "rss_mb": round(stats.rss_bytes / 2**20, 1),
    }


def _baselines(
    stack: BenchStack, bench: BenchWorld, org: BenchOrg, workdir: Path, sizes: Sizes, log: Log
) -> dict[str, Any]:
    """Both baselines on companies of the same emulator, with the same customers, items and invoice distribution."""
    assert stack.emulator is not None
    log(f"baseline: the seed's design, one pass over {sizes.seed_design_queued} queued invoices")
    company = baseline_company(stack, org, "Seed design Co")
    token = stack.admin("POST", f"/companies/{company.realm}/tokens", json={})["access_token"]
    worker = SeedQueueWorker(
        workdir / "seed-design.sqlite", base_url=stack.emulator.url, realm_id=company.realm, access_token=token
    )
    try:
        invoices = _invoices(bench, org, sizes.seed_design_queued)
        worker.enqueue(org.id, [(event.entity_id, company.body(event)) for event in invoices])
        seed_run = worker.run(max_passes=1)
    finally:
        worker.close()
    log(f"baseline: sequential python-quickbooks, {sizes.sequential_invoices} invoices")
    library_company = baseline_company(stack, org, "Sequential Co")
    client = connect_library(stack.emulator.url, library_company.realm)
    sequential = run_sequential(
        client, [library_company.body(e) for e in _invoices(bench, org, sizes.sequential_invoices)]
    )
    return {
        "seed_design": {
            "measured_passes": len(seed_run.passes),
            "measured_synced": seed_run.synced,
            "mean_call_s": round(sum(seed_run.call_seconds) / max(len(seed_run.call_seconds), 1), 3),
            "poll_interval_s": seed_run.poll_interval_s,
            "pass_limit": seed_run.pass_limit,
            "projected_s": {
                str(n): round(seed_run.projected_seconds(n), 1)
                for n in (sizes.seed_test_invoices, sizes.bulk_invoices, 100, 3_000)
            },
        },
        "sequential_library": {
            "measured_invoices": sequential.synced + sequential.failed,
            "synced": sequential.synced,
            "failed": sequential.failed,
            "elapsed_s": round(sequential.elapsed_s, 3),
            "mean_call_s": round(sequential.elapsed_s / max(sequential.synced + sequential.failed, 1), 3),
            "projected_s": {
                str(n): round(sequential.projected_seconds(n), 1)
                for n in (sizes.seed_test_invoices, sizes.bulk_invoices, 100, 3_000)
            },
        },
    }


def _invoices(bench: BenchWorld, org: BenchOrg, count: int) -> list[InvoiceCreated]:
    return bench.invoices(count, [org])


# ---- platform overhead: zero latency, limits off --------------------------------------------------------------------
async def platform(
    bootstrap: str,
    workdir: Path,
    database_url: str,
    sizes: Sizes,
    log: Log,
    *,
    broker_pid: int | None = None,
    service_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Throughput, CPU and memory of qbsync itself; latency at half capacity; scale-out; the backlog."""
    env = GROUP_ENV | {"QBSYNC_DATABASE__URL": database_url} | (service_env or {})
    stack = BenchStack(bootstrap, workdir / "platform", service_env=env, broker_pid=broker_pid)
    try:
        stack.start_emulator("--no-limits")
        for service in SERVICES:
            stack.start_service(service)
        bench = BenchWorld.build(
            seed=20, organizations=sizes.platform_orgs, customers_per_org=sizes.platform_customers_per_org
        )
        log(f"platform: setting up {sizes.platform_orgs} companies")
        await set_up_platform(stack, bench)
        report: dict[str, Any] = {"conditions": {"latency": "none", "limits": "off", "database": "postgresql"}}
        # Each part is recorded as soon as it is measured; a part that fails (e.g. a timeout on a busy machine) is
        # recorded under "errors" and the parts after it still run, so one slow step never loses the others.
        async with ResultCollector(stack.bootstrap, stack.prefix) as results:
            if sizes.platform_invoices_per_org > 0:  # 0: only the backlog (e.g. comparing runtime settings)
                overhead = _overhead_run(stack, results, bench, sizes, log, "one instance")
                await _part(report, "one_instance", overhead, log)
            if sizes.latency_seconds > 0 and "one_instance" in report:
                latency = _latency_run(stack, results, bench, sizes, log, report)
                await _part(report, "latency_half_capacity", latency, log)
            if sizes.scale_out and sizes.platform_invoices_per_org > 0:
                await _part(report, "two_instances", _scale_out(stack, results, bench, sizes, log), log)
        if "invoice-sync#2" in stack.processes:
            stack.stop("invoice-sync#2")
            await _wait_assigned(stack, "invoice-sync")
        if "one_instance" in report and "two_instances" in report:
            report["scale_out_ratio"] = round(report["two_instances"]["per_s"] / report["one_instance"]["per_s"], 3)
        await _part(report, "backlog", _backlog(stack, bench, sizes, log), log)
        report["peak_rss_mb"] = {name: _stats(s)["peak_rss_mb"] for name, s in stack.stats().items()}
        return report
    finally:
        stack.close()


async def _part(report: dict[str, Any], key: str, measure: Coroutine[Any, Any, dict[str, Any]], log: Log) -> None:
    """``report[key]`` = what ``measure`` returns; a failure goes to ``report["errors"][key]`` instead."""
    try:
        report[key] = await measure
    except Exception as error:  # recorded; the scenario's other parts still run
        log(f"platform: {key} failed: {type(error).__name__}: {error}")
        report.setdefault("errors", {})[key] = f"{type(error).__name__}: {error}"


async def _scale_out(
    stack: BenchStack, results: ResultCollector, bench: BenchWorld, sizes: Sizes, log: Log
) -> dict[str, Any]:
    await _add_instance(stack, log)
    return await _overhead_run(stack, results, bench, sizes, log, "two instances")


async def _overhead_run(
    stack: BenchStack, results: ResultCollector, bench: BenchWorld, sizes: Sizes, log: Log, label: str
) -> dict[str, Any]:
    events = bench.invoices(sizes.platform_invoices_per_org)
    log(f"platform: {label}, {len(events)} invoices over {len(bench.orgs)} companies")
    before = stack.stats()
    timing = await timed_sync(stack, results, events, timeout_s=sizes.timeout_s)
    after = stack.stats()
    return timing.summary() | {
        "cpu_s_per_1000": cpu_per_thousand(before, after, timing.events),
        "processes": {name: _stats(s) for name, s in after.items()},
    }


async def _latency_run(
    stack: BenchStack, results: ResultCollector, bench: BenchWorld, sizes: Sizes, log: Log, report: dict[str, Any]
) -> dict[str, Any]:
    """Invoices paced at half the rate the one-instance run reached, each stamped when sent."""
    rate = report["one_instance"]["per_s"] / 2
    events = bench.invoices(max(1, round(rate * sizes.latency_seconds / len(bench.orgs))))
    log(f"platform: latency, {len(events)} invoices paced at {rate:.0f}/s (half the measured rate)")
    paced = await timed_sync(stack, results, events, timeout_s=sizes.timeout_s, rate_per_s=rate)
    return paced.summary() | {"rate_per_s": round(rate, 1)}


async def _add_instance(stack: BenchStack, log: Log) -> None:
    """A second invoice-sync in the same consumer group; returns once the partitions are spread over both."""
    first = stack.processes["invoice-sync"]
    total = stack.partitions_total = _assigned(first.url)
    second = stack.start_service("invoice-sync", instance=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        one, two = _assigned(first.url), _assigned(second.url)
        if one > 0 and two > 0 and one + two == total:
            log(f"platform: two instances, partitions {one} + {two}")
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the second invoice-sync instance got no partitions within 60 s")


async def _wait_assigned(stack: BenchStack, name: str) -> None:
    """Until the one remaining instance holds every partition again (the group rebalanced after the other left)."""
    deadline = time.monotonic() + 120
    total = stack.partitions_total
    while _assigned(stack.processes[name].url) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.5)


def _assigned(url: str) -> int:
    """``qbsync_partitions_assigned`` of one instance (its /metrics)."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("qbsync_partitions_assigned{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def _backlog(stack: BenchStack, bench: BenchWorld, sizes: Sizes, log: Log) -> dict[str, Any]:
    """Queue ``backlog_events`` far faster than invoice-sync drains them, and sample its memory as it works.

    The events are published as fast as the broker takes them (thousands a second, against hundreds processed), so
    nearly all of them wait in the topic; the runtime's back-pressure (``max_buffered_per_partition``) is what keeps
    the service's memory flat. (Stopping the service while the backlog is queued and restarting it would be the
    same test, but a restarted member's rebalance on the embedded broker can take minutes.)
    """
    process = stack.processes["invoice-sync"]
    orgs = bench.orgs[: sizes.backlog_orgs]
    per_org = -(-sizes.backlog_events // len(orgs))
    events = bench.invoices(per_org, orgs)[: sizes.backlog_events]
    wanted = {event.event_id for event in events}
    samples: list[tuple[float, float, int]] = []
    async with ResultCollector(stack.bootstrap, stack.prefix) as results:
        log(f"platform: backlog, {len(events)} invoices published at once; sampling invoice-sync's memory")
        origin = time.monotonic()
        publishing = asyncio.create_task(publish(stack.bootstrap, stack.prefix, events))
        try:
            while time.monotonic() - origin < sizes.backlog_sample_seconds and results.done(wanted) < len(wanted):
                rss_mb = round(process.stats().rss_bytes / 2**20, 1)
                samples.append((round(time.monotonic() - origin, 1), rss_mb, results.done(wanted)))
                await asyncio.sleep(1.0)
            await publishing  # the whole backlog is queued before the run ends
        finally:
            publishing.cancel()
        done = results.done(wanted)
    rss = [mb for _, mb, _ in samples]
    settled = rss[len(rss) // 4 :] or rss
    return {
        "queued": len(events),
        "processed_while_sampled": done,
        "sampled_seconds": round(time.monotonic() - origin, 1),
        "rss_mb": {
            "first": rss[0] if rss else None,
            "max": max(rss, default=None),
            "last": rss[-1] if rss else None,
            "growth_after_first_quarter": round(max(settled) - settled[0], 1) if settled else None,
        },
        "peak_rss_mb": round(process.stats().peak_rss_bytes / 2**20, 1),
        "samples": samples,
    }
