"""Timing one batch of events through the platform, and the arithmetic of the report (rates, percentiles, CPU).

:func:`timed_sync` publishes events and waits for every one's terminal result: the clock runs from the moment the
first event is sent to the moment the last result arrives here — what Batchly would see, end to end.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qbsync.contracts.envelope import AnyEnvelope
from tests.bench.kafka import ResultCollector, publish
from tests.bench.stack import BenchStack, ProcessStats

__all__ = ["SyncTiming", "cpu_per_thousand", "percentile", "timed_sync"]


@dataclass(frozen=True, slots=True)
class SyncTiming:
    """What one timed batch did: how many, how long, the outcomes and the latency of each event."""

    events: int
    elapsed_s: float
    outcomes: dict[str, int]
    duplicates: int  # terminal results beyond the first for one source event (duplicate work)
    latency_s: tuple[float, ...]  # per event: from the moment it was sent to its result's arrival

    @property
    def per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "elapsed_s": round(self.elapsed_s, 3),
            "per_s": round(self.per_s, 2),
            "per_min": round(self.per_s * 60, 1),
            "outcomes": self.outcomes,
            "duplicate_results": self.duplicates,
            "latency_s": {
                "p50": round(percentile(self.latency_s, 50), 3),
                "p95": round(percentile(self.latency_s, 95), 3),
                "p99": round(percentile(self.latency_s, 99), 3),
                "max": round(max(self.latency_s, default=0.0), 3),
            },
        }


async def timed_sync(
    stack: BenchStack,
    results: ResultCollector,
    events: Sequence[AnyEnvelope],
    *,
    timeout_s: float,
    rate_per_s: float | None = None,
) -> SyncTiming:
    """Publish ``events`` (paced at ``rate_per_s`` if given) and wait until each has a terminal result."""
    sent_at: dict[Any, float] = {}
    duplicates_before = results.duplicates

    def mark(event: AnyEnvelope) -> None:
        sent_at[event.event_id] = time.time()

    started = await publish(stack.bootstrap, stack.prefix, events, rate_per_s=rate_per_s, on_sent=mark)
    ids = [event.event_id for event in events]
    await results.wait_for(set(ids), timeout_s=timeout_s, what="benchmark events")
    done = [results.results[event_id] for event_id in ids]
    finished = max(result.received_at for result in done)
    outcomes = Counter(result.event_type if result.action is None else result.action for result in done)
    return SyncTiming(
        events=len(ids),
        elapsed_s=finished - started,
        outcomes=dict(outcomes),
        duplicates=results.duplicates - duplicates_before,
        latency_s=tuple(results.results[i].received_at - sent_at[i] for i in ids),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values): the smallest value with at least ``q`` % of values at or below."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def cpu_per_thousand(
    before: Mapping[str, ProcessStats], after: Mapping[str, ProcessStats], events: int
) -> dict[str, float]:
    """CPU seconds each process spent per 1,000 events between two snapshots."""
    return {
        name: round((after[name].cpu_seconds - before[name].cpu_seconds) * 1_000 / max(events, 1), 3)
        for name in after
        if name in before
    }
