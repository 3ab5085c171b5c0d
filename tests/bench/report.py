"""The benchmark report: issue 10's targets checked against a run's figures, and the Markdown table of them.

A target is *shown*, never asserted: the report says met or missed and by how much, and ``docs/performance.md``
explains why. A scenario that was not run (``--only``) or failed has no figures, and its targets say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Target", "markdown", "targets", "validate"]

REQUIRED_KEYS = ("meta", "scenarios", "targets")


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def targets(report: dict[str, Any]) -> list[Target]:
    """Each of issue 10's targets, from whatever the run measured."""
    scenarios = report.get("scenarios", {})
    qbo = scenarios.get("qbo_bound") or {}
    plat = scenarios.get("platform") or {}
    return [
        _check(qbo, "per-company bulk: share of 3,600 invoices/min, 429s", "≥ 90 %, 0", _bulk),
        _check(qbo, "the seed's test (100 invoices at 250 ms)", "≤ 3 s", _seed_test),
        _check(qbo, "vs the seed's design, same backlog", "≥ 20x", lambda q: _versus(q, "seed_design", 20)),
        _check(
            qbo,
            "vs sequential python-quickbooks, same backlog",
            "≥ 10x",
            lambda q: _versus(q, "sequential_library", 10),
        ),
        _check(plat, "platform overhead (one instance per service)", "≥ 500 invoices/s", _overhead),
        _check(plat, "latency p99 at half capacity (QBO latency 0)", "≤ 2 s", _latency),
        _check(plat, "peak RSS per service (incl. the backlog)", "≤ 200 MB", _rss),
        _check(plat, "scale-out: 2 instances / 1 instance", "(reported)", _scale_out),
    ]


def _check(
    scenario: dict[str, Any], name: str, goal: str, measure: Callable[[dict[str, Any]], tuple[str, bool | None]]
) -> Target:
    if not scenario or "error" in scenario:
        return Target(name, goal, "not measured" if not scenario else f"failed: {scenario['error'][:80]}", None)
    try:
        measured, met = measure(scenario)
    except KeyError as missing:  # a part of the scenario left out of this run (e.g. --set scale_out=false)
        return Target(name, goal, f"not measured ({missing} not run)", None)
    return Target(name, goal, measured, met)


def _bulk(qbo: dict[str, Any]) -> tuple[str, bool | None]:
    bulk = qbo["bulk"]
    share = bulk["share_of_ceiling"]
    text = f"{bulk['per_min']:,.0f}/min = {share:.0%} of ceiling, {bulk['throttled_429']} x 429 ({bulk['events']:,})"
    return text, share >= 0.9 and bulk["throttled_429"] == 0


def _seed_test(qbo: dict[str, Any]) -> tuple[str, bool | None]:
    seed = qbo["seed_test"]
    met = seed["elapsed_s"] <= 3.0 if seed["events"] == 100 else None
    return f"{seed['elapsed_s']:.2f} s for {seed['events']} invoices", met


def _versus(qbo: dict[str, Any], baseline: str, goal: float) -> tuple[str, bool | None]:
    bulk = qbo["bulk"]
    projected = qbo["baselines"][baseline]["projected_s"][str(bulk["events"])]
    ratio = projected / bulk["elapsed_s"]
    return f"{ratio:,.1f}x ({projected:,.0f} s vs {bulk['elapsed_s']:,.1f} s, {bulk['events']:,})", ratio >= goal


def _versus_sequential(qbo: dict[str, Any]) -> tuple[str, bool | None]:
    return _versus(qbo, "sequential_library", 10)


def _overhead(plat: dict[str, Any]) -> tuple[str, bool | None]:
    one = plat["one_instance"]
    return f"{one['per_s']:,.0f} invoices/s ({one['events']:,} over the companies)", one["per_s"] >= 500


def _latency(plat: dict[str, Any]) -> tuple[str, bool | None]:
    lat = plat["latency_half_capacity"]["latency_s"]
    return f"p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, p99 {lat['p99']:.2f} s", lat["p99"] <= 2.0


def _rss(plat: dict[str, Any]) -> tuple[str, bool | None]:
    services = {k: v for k, v in plat["peak_rss_mb"].items() if k not in ("broker", "qbo-emulator")}
    services["invoice-sync (backlog)"] = plat["backlog"]["peak_rss_mb"]
    worst = max(services, key=lambda k: services[k])
    return f"max {services[worst]:.0f} MB ({worst})", services[worst] <= 200


def _scale_out(plat: dict[str, Any]) -> tuple[str, bool | None]:
    one, two = plat["one_instance"]["per_s"], plat["two_instances"]["per_s"]
    return f"{plat['scale_out_ratio']:.2f}x ({one:,.0f} → {two:,.0f} invoices/s)", None


def markdown(report: dict[str, Any]) -> str:
    """The table ``docs/performance.md`` records."""
    rows = ["| target | goal | measured | |", "|---|---|---|---|"]
    for item in report["targets"]:
        mark = {True: "met", False: "**missed**", None: "—"}[item["met"]]
        rows.append(f"| {item['name']} | {item['target']} | {item['measured']} | {mark} |")
    return "\n".join(rows)


def with_targets(report: dict[str, Any]) -> dict[str, Any]:
    return report | {"targets": [asdict(t) for t in targets(report)]}


def validate(report: dict[str, Any]) -> list[str]:
    """What is wrong with a report's shape (empty when it is well-formed)."""
    problems = [f"missing {key}" for key in REQUIRED_KEYS if key not in report]
    fields = {"name", "target", "measured", "met"}
    problems += [f"malformed target {item}" for item in report.get("targets", []) if set(item) != fields]
    for name, scenario in report.get("scenarios", {}).items():
        if not isinstance(scenario, dict):
            problems.append(f"scenario {name} is not an object")
        elif "error" in scenario:
            problems.append(f"scenario {name} failed: {scenario['error']}")
        else:
            problems += [f"{name}.{part} failed: {error}" for part, error in scenario.get("errors", {}).items()]
    return problems
