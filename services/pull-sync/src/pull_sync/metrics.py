"""Prometheus metrics of pull-sync (prefix ``qbsync_pull_``; labels are small fixed sets, never an id)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["CHANGES", "SLOTS", "WEBHOOKS"]

WEBHOOKS = Counter(
    "qbsync_pull_webhooks_total",
    "QuickBooks webhook requests by outcome (accepted, bad_signature, too_large, malformed, unknown_realm, "
    "unavailable).",
    ["outcome"],
)
SLOTS = Counter(
    "qbsync_pull_schedule_slots_total",
    "Schedule slots this replica claimed and published, by job.",
    ["job"],
)
CHANGES = Counter(
    "qbsync_pull_changes_total",
    "Changes published to Batchly, by pull kind and change (created, updated, deactivated, or a payment status).",
    ["kind", "change"],
)
