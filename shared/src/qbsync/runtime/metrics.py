"""Prometheus metrics of the consumer runtime (prefix ``qbsync_``, base units, bounded labels).

Labels are services, topics, partitions, event types, outcomes, tiers and error classes — all small, fixed sets.
Never an organization, customer or invoice id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "EVENTS",
    "HANDLE_SECONDS",
    "LAST_SYNC",
    "LEDGER_FAILED_7D",
    "LEDGER_RECORDS",
    "MALFORMED",
    "OUTCOME_WRITE_RETRIES",
    "PARKED",
    "PARTITIONS_ASSIGNED",
    "RETRIES",
    "SYNC_LATENCY",
]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

EVENTS = Counter(
    "qbsync_events_total",
    "Inbound records by service, topic and outcome (completed, ignored, recorded, retry, dead_letter, parked, "
    "duplicate, skipped).",
    ["service", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "qbsync_event_handle_seconds",
    "Time a handler took for one record, by service and event type.",
    ["service", "event_type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SYNC_LATENCY = Histogram(
    "qbsync_sync_latency_seconds",
    "From the event's occurred_at to its terminal outcome, by service, entity type and outcome.",
    ["service", "entity_type", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
RETRIES = Counter("qbsync_retries_total", "Records handed to a retry tier, by service and tier.", ["service", "tier"])
DEAD_LETTERS = Counter(
    "qbsync_dead_letters_total",
    "Records written to the dead-letter topic, by service and error class.",
    ["service", "error_class"],
)
MALFORMED = Counter("qbsync_malformed_total", "Malformed records, by service and reason.", ["service", "reason"])
PARKED = Gauge("qbsync_parked_records", "Records parked until their organization reconnects.", ["service"])
OUTCOME_WRITE_RETRIES = Counter(
    "qbsync_outcome_write_retries_total",
    "Times recording an outcome (database or broker) failed and was retried in place, by service and step.",
    ["service", "step"],
)
CONSUMER_LAG = Gauge(
    "qbsync_consumer_lag",
    "Records behind the end of the partition, by service, topic and partition.",
    ["service", "topic", "partition"],
)
PARTITIONS_ASSIGNED = Gauge("qbsync_partitions_assigned", "Partitions assigned to this consumer.", ["service"])

# ---- ledger gauges (refreshed from each service's own ledger by qbsync.observability.ledger_gauges) ----------------
LEDGER_RECORDS = Gauge(
    "qbsync_ledger_records",
    "Sync ledger rows waiting or failed, by service, entity type and status (pending, retrying, parked, failed).",
    ["service", "entity_type", "status"],
)
LEDGER_FAILED_7D = Gauge(
    "qbsync_ledger_failed_last_7d",
    "Sync ledger rows whose last outcome was a failure within the last 7 days, by service and entity type.",
    ["service", "entity_type"],
)
LAST_SYNC = Gauge(
    "qbsync_last_sync_timestamp_seconds",
    "Unix time of the newest completed sync, by service and entity type.",
    ["service", "entity_type"],
)
