"""What the campaign sends, and what each event must end in.

The traffic is ``BatchlyWorld.mixed_stream`` for a few organizations: customers (a share of them invalid, on purpose),
sales orders, invoices, voids, credit memos, portal payments, refunds and item pushes, causally valid by
construction, with a share delivered twice (at-least-once producers). Beside it the emulator's accountant records
payments in QuickBooks and Batchly asks for "Sync Payments Now".

Every event gets an :class:`Expectation` from the world's own knowledge, never from what the platform answered: a
customer the generator made invalid must fail (``permanent``), and so must every document that depends on it —
its invoices wait for a customer that can never sync and are dead-lettered when the ladder ends (``dependency``),
their payments, credit memos and refunds likewise; a void of such an invoice is held ``pending`` for it. Everything
else must reach QuickBooks (or be ignored for a stated reason). These are the only records allowed in a dead-letter
topic.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from uuid import UUID

from qbsync.contracts.batchly import (
    CreditMemoCreated,
    CustomerCreated,
    CustomerUpdated,
    InvoiceCreated,
    InvoiceVoided,
    ItemCreated,
    OrganizationUpserted,
    PaymentRecorded,
    RefundIssued,
    SalesOrderCreated,
)
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import DEFAULT_MIX, BatchlyWorld, WorldConfig, with_redeliveries

__all__ = ["PROFILES", "Expectation", "Plan", "Profile", "build_plan"]

#: What an event must end in: ``recorded`` (local bookkeeping in every service, no result event), ``synced``
#: (SyncCompleted), ``ignored`` (SyncStatusChanged ignored), ``customer`` (completed, or ignored as stale, or held
#: ``pending`` for a nightly batch), ``bad`` (SyncFailed and a dead letter), ``bad_void`` (a void of an invoice that
#: can never sync: held ``pending`` for it, or failed), ``synced_or_inactive`` (a document of a customer that Batchly
#: deactivates later in the stream: synced, unless the deactivation reached QuickBooks first — customers and documents
#: travel through different services, so under delays QuickBooks may refuse the document with 610 "made inactive"
#: and its payments, credit memos and voids then wait for it and fail or stay pending).
Expected = Literal["recorded", "synced", "ignored", "customer", "bad", "bad_void", "synced_or_inactive"]


@dataclass(frozen=True, slots=True)
class Expectation:
    event_id: UUID
    event_type: str
    organization_id: UUID
    expected: Expected
    #: The service whose outcome this is (``None`` for ``recorded``: every service records it).
    service: str | None
    #: The Batchly customer a document belongs to (``None`` for other events).
    customer_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """How big and how rough a campaign is. ``reduced`` runs in the default test run; ``full`` is the issue's."""

    name: str
    events: int
    organizations: int
    seed: int
    #: Share of new customers the generator makes invalid (blank or ``:`` names, bad e-mail, over-long names).
    invalid_share: float
    #: Share of events delivered a second time.
    redelivery_share: float
    #: SIGKILL + restart of each of the four services, this many times.
    kills_per_service: int
    #: Episodes of each fault kind (outage 503 JSON, HTML 502, latency, 429 storm, drop after write, timeout,
    #: 401 storm, refresh failure); revocations are separate.
    episodes_per_fault: int
    revocations: int
    #: Payments the emulator's accountant records on synced invoices.
    accountant_payments: int
    #: Publishing is spread over this many seconds (chaos runs during it and a little after).
    publish_seconds: float
    #: The longest wait for every event to settle after chaos ends.
    settle_timeout_s: float
    #: The services' retry ladder: long enough (about a minute) to outlast any one fault episode or restart.
    retry_delays_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
    log_level: str = "INFO"


PROFILES: Final[dict[str, Profile]] = {
    "reduced": Profile(
        name="reduced",
        events=360,
        organizations=3,
        seed=9,
        invalid_share=0.04,
        redelivery_share=0.05,
        kills_per_service=1,
        episodes_per_fault=1,
        revocations=1,
        accountant_payments=8,
        publish_seconds=25,
        settle_timeout_s=150,
        log_level="DEBUG",
    ),
    "full": Profile(
        name="full",
        events=2_000,
        organizations=5,
        seed=2026,
        invalid_share=0.03,
        redelivery_share=0.05,
        kills_per_service=4,
        episodes_per_fault=3,
        revocations=2,
        accountant_payments=40,
        publish_seconds=150,
        settle_timeout_s=480,
        # four kills per service and three episodes of every fault (27 episodes over 5 companies in under 3 min)
        # compound: a customer can take a minute to sync, its invoices wait for it, and their last attempts can meet
        # two more episodes — a ladder of about 4 min (production's: 30 s + 2 min, for far rarer faults)
        retry_delays_s=(1.0, 3.0, 8.0, 20.0, 45.0, 60.0, 90.0),
    ),
}

#: The default mix without organization setting flips: a flip to nightly customer updates or to blocking number gaps
#: changes an event's expected outcome with the moment it is processed, which the accounting pass cannot know.
CAMPAIGN_MIX: Final[dict[str, float]] = {**DEFAULT_MIX, "OrganizationUpserted": 0.0}

_SERVICE_OF: Final[dict[type[AnyEnvelope], str]] = {
    CustomerCreated: "customer-sync",
    CustomerUpdated: "customer-sync",
    ItemCreated: "pull-sync",
    SalesOrderCreated: "invoice-sync",
    InvoiceCreated: "invoice-sync",
    InvoiceVoided: "invoice-sync",
    CreditMemoCreated: "invoice-sync",
    PaymentRecorded: "invoice-sync",
    RefundIssued: "invoice-sync",
}


@dataclass
class Plan:
    """The events in publish order (redeliveries included) and what each distinct event must end in."""

    world: BatchlyWorld
    organizations: list[OrganizationUpserted]
    events: list[AnyEnvelope]
    records: list[AnyEnvelope]
    expectations: dict[UUID, Expectation] = field(default_factory=dict)

    @property
    def organization_ids(self) -> list[UUID]:
        return [org.entity_id for org in self.organizations]

    def counts(self) -> Counter[str]:
        return Counter(e.event_type for e in self.events)

    def expected_bad(self) -> set[UUID]:
        """Events that may end in a dead letter: the generator's invalid ones and the deactivation races."""
        allowed = ("bad", "bad_void", "synced_or_inactive")
        return {e.event_id for e in self.expectations.values() if e.expected in allowed}


def build_plan(profile: Profile) -> Plan:
    world = BatchlyWorld(
        profile.seed,
        start=datetime.now(UTC) - timedelta(days=2),
        config=WorldConfig(hard_case_share=0.1, invalid_share=profile.invalid_share),
    )
    orgs = [
        world.add_organization(customer_update_mode="immediate", invoice_number_gap_policy="warn")
        for _ in range(profile.organizations)
    ]
    stream = list(world.mixed_stream([o.entity_id for o in orgs], profile.events - len(orgs), CAMPAIGN_MIX))
    events: list[AnyEnvelope] = [*orgs, *stream]
    rng = random.Random(profile.seed)
    plan = Plan(world, orgs, events, [*orgs, *with_redeliveries(stream, profile.redelivery_share, rng)])
    deactivated = {e.entity_id for e in events if isinstance(e, CustomerUpdated) and not e.payload.active}
    plan.expectations = {e.event_id: _expectation(world, e, deactivated) for e in events}
    return plan


def _expectation(world: BatchlyWorld, event: AnyEnvelope, deactivated: set[UUID]) -> Expectation:
    customer: UUID | None = None
    if isinstance(event, OrganizationUpserted):
        expected: Expected = "recorded"
    elif isinstance(event, SalesOrderCreated):
        expected = "ignored"
    elif isinstance(event, CustomerCreated | CustomerUpdated):
        expected = "bad" if _invalid(world, event.entity_id) else "customer"
    elif isinstance(event, ItemCreated):
        expected = "synced"
    elif isinstance(event, InvoiceVoided):
        customer = world.invoice(event.payload.invoice_id).payload.customer_id
        expected = "bad_void" if _invalid(world, customer) else "synced"
    elif isinstance(event, InvoiceCreated | CreditMemoCreated | PaymentRecorded | RefundIssued):
        customer = event.payload.customer_id
        expected = "bad" if _invalid(world, customer) else "synced"
    else:  # pragma: no cover - the mixed stream produces nothing else
        raise AssertionError(f"no expectation for {event.event_type}")
    if expected == "synced" and customer in deactivated:
        expected = "synced_or_inactive"
    return Expectation(
        event.event_id, event.event_type, event.organization_id, expected, _SERVICE_OF.get(type(event)), customer
    )


def _invalid(world: BatchlyWorld, customer_id: UUID) -> bool:
    return world.customer(customer_id).case.is_invalid
