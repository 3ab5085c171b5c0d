"""Every topic name in one place.

Inbound topics carry Batchly's domain events, one topic per aggregate, keyed by ``organization_id`` so one tenant's
events keep their order and one QuickBooks company's traffic lands on one consumer. Outbound topics carry what
qbsync tells Batchly and operators. Each consuming service owns its retry tiers and its dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BATCHLY_COMMANDS",
    "BATCHLY_CREDIT_MEMOS",
    "BATCHLY_CUSTOMERS",
    "BATCHLY_INVOICES",
    "BATCHLY_ITEMS",
    "BATCHLY_ORDERS",
    "BATCHLY_ORGANIZATIONS",
    "BATCHLY_PAYMENTS",
    "INBOUND_TOPICS",
    "QBSYNC_CHANGES",
    "QBSYNC_CONNECTIONS",
    "QBSYNC_PULL_REQUESTS",
    "QBSYNC_SYNC_RESULTS",
    "QBSYNC_WEBHOOKS",
    "TopicSpec",
    "all_topic_specs",
    "dead_letter_topic",
    "retry_topic",
    "service_topics",
]

# ---- inbound: Batchly -> qbsync -----------------------------------------------------------------------------------
BATCHLY_ORGANIZATIONS = "batchly.organizations"
BATCHLY_CUSTOMERS = "batchly.customers"
BATCHLY_ITEMS = "batchly.items"
BATCHLY_ORDERS = "batchly.orders"
BATCHLY_INVOICES = "batchly.invoices"
BATCHLY_CREDIT_MEMOS = "batchly.credit-memos"
BATCHLY_PAYMENTS = "batchly.payments"
#: Manual syncs and scheduled flushes ("Sync All Customers", "Sync Items Now", ...).
BATCHLY_COMMANDS = "batchly.commands"

INBOUND_TOPICS: tuple[str, ...] = (
    BATCHLY_ORGANIZATIONS,
    BATCHLY_CUSTOMERS,
    BATCHLY_ITEMS,
    BATCHLY_ORDERS,
    BATCHLY_INVOICES,
    BATCHLY_CREDIT_MEMOS,
    BATCHLY_PAYMENTS,
    BATCHLY_COMMANDS,
)

# ---- outbound: qbsync -> Batchly, dashboards, operators ------------------------------------------------------------
#: SyncStatusChanged / SyncCompleted / SyncFailed for every inbound event a service handles.
QBSYNC_SYNC_RESULTS = "qbsync.sync-results"
#: What changed in QuickBooks for Batchly to apply: ItemChanged, InvoicePaymentChanged, TaxRateChanged, ...
QBSYNC_CHANGES = "qbsync.changes"
#: QboConnected / QboConnectionLost, published by token-manager only.
QBSYNC_CONNECTIONS = "qbsync.connections"

# ---- internal: between qbsync services ----------------------------------------------------------------------------
#: Pull work for pull-sync, produced by its scheduler, its webhook receiver and manual commands.
QBSYNC_PULL_REQUESTS = "qbsync.pull-requests"
#: Verified QuickBooks webhook notifications, put here before the webhook receiver answers Intuit.
QBSYNC_WEBHOOKS = "qbsync.webhooks"


def retry_topic(service: str, tier: int) -> str:
    """The retry topic of ``service`` for tier ``tier`` (1-based; tier n holds attempt n + 1)."""
    if tier < 1:
        raise ValueError("retry tiers are numbered from 1")
    return f"qbsync.{service}.retry.{tier}"


def dead_letter_topic(service: str) -> str:
    return f"qbsync.{service}.dlt"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int


#: The topics each service consumes (its retry tiers come on top).
_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "customer-sync": (BATCHLY_ORGANIZATIONS, BATCHLY_CUSTOMERS, BATCHLY_COMMANDS, QBSYNC_CONNECTIONS),
    "invoice-sync": (
        BATCHLY_ORGANIZATIONS,
        BATCHLY_ORDERS,
        BATCHLY_INVOICES,
        BATCHLY_CREDIT_MEMOS,
        BATCHLY_PAYMENTS,
        BATCHLY_COMMANDS,
        QBSYNC_CONNECTIONS,
        QBSYNC_SYNC_RESULTS,
        QBSYNC_CHANGES,
    ),
    "pull-sync": (
        BATCHLY_ORGANIZATIONS,
        BATCHLY_ITEMS,
        BATCHLY_COMMANDS,
        QBSYNC_PULL_REQUESTS,
        QBSYNC_WEBHOOKS,
        QBSYNC_CONNECTIONS,
        QBSYNC_SYNC_RESULTS,
    ),
    "token-manager": (BATCHLY_ORGANIZATIONS, BATCHLY_COMMANDS),
}


def service_topics(service: str) -> tuple[str, ...]:
    """Main topics ``service`` subscribes to (not counting its own retry tiers)."""
    try:
        return _SUBSCRIPTIONS[service]
    except KeyError:
        raise ValueError(f"unknown service {service!r}") from None


def all_topic_specs(
    services: tuple[str, ...], *, tiers: int, partitions: int, retry_partitions: int
) -> list[TopicSpec]:
    """Every topic the platform needs, with explicit partition counts."""
    names = [
        *INBOUND_TOPICS,
        QBSYNC_SYNC_RESULTS,
        QBSYNC_CHANGES,
        QBSYNC_CONNECTIONS,
        QBSYNC_PULL_REQUESTS,
        QBSYNC_WEBHOOKS,
    ]
    specs = [TopicSpec(name, partitions) for name in names]
    for service in services:
        specs.extend(TopicSpec(retry_topic(service, tier), retry_partitions) for tier in range(1, tiers + 1))
        specs.append(TopicSpec(dead_letter_topic(service), retry_partitions))
    return specs
