"""The core of the simulated Batchly: configuration, state, the clock and the event factory.

One seeded ``random.Random`` drives every choice and a simulated clock stamps every event (it starts at ``start``
and moves forward a little per event unless an operation is given ``at=``), so the same seed and the same calls give
byte-identical events on every machine. Nothing reads the wall clock or the global RNG.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from qbsync.contracts.envelope import AnyEnvelope, ContractModel
from qbsync.simulate import documents
from qbsync.simulate.catalog import DEFAULT_CATALOG, CatalogItem
from qbsync.simulate.state import (
    CreditMemoState,
    CustomerState,
    InvoiceState,
    OrderState,
    OrganizationState,
)

__all__ = ["WorldConfig", "WorldCore"]

E = TypeVar("E", bound=AnyEnvelope)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Knobs of the simulation; the defaults give a realistic, valid mix."""

    #: Share of new customers that are valid but awkward (apostrophes, unicode, 500-char names, +tagged e-mail).
    hard_case_share: float = 0.1
    #: Share of new customers QuickBooks would reject (blank or ``:`` names, bad e-mail, >500 chars). Opt-in.
    invalid_share: float = 0.0
    tax_exempt_share: float = 0.05
    invoice_prefix: str = "INV-"
    order_prefix: str = "SO-"
    credit_memo_prefix: str = "CM-"
    number_width: int = 6
    #: Line count (inclusive range) of invoices that are not made from a customer's standing order.
    lines_per_invoice: tuple[int, int] = (1, 8)
    mean_seconds_between_events: float = 45.0
    #: Share of payments that settle the whole balance (the rest are partial).
    full_payment_share: float = 0.7

    def __post_init__(self) -> None:
        shares = (self.hard_case_share, self.invalid_share, self.tax_exempt_share, self.full_payment_share)
        if any(not 0 <= share <= 1 for share in shares) or self.hard_case_share + self.invalid_share > 1:
            raise ValueError("shares must be within [0, 1] and hard_case_share + invalid_share <= 1")
        low, high = self.lines_per_invoice
        if not 1 <= low <= high <= 1_000:
            raise ValueError("lines_per_invoice must satisfy 1 <= low <= high <= 1000")
        if self.number_width < 1 or self.mean_seconds_between_events <= 0:
            raise ValueError("number_width must be >= 1 and mean_seconds_between_events > 0")


class WorldCore:
    """State, clock and event factory shared by every operation of ``BatchlyWorld``."""

    def __init__(
        self,
        seed: int,
        *,
        start: datetime,
        catalog: Sequence[CatalogItem] = DEFAULT_CATALOG,
        config: WorldConfig | None = None,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        skus = [item.sku for item in catalog]
        if not skus or len(set(skus)) != len(skus):
            raise ValueError("the catalog must be non-empty with unique SKUs")
        documents.check_catalog(catalog)
        self.rng = random.Random(seed)
        self.config = config or WorldConfig()
        self.catalog: tuple[CatalogItem, ...] = tuple(catalog)
        self._taxable_items = tuple(item for item in self.catalog if item.taxable)
        self._now = start.astimezone(UTC)
        self._organizations: dict[UUID, OrganizationState] = {}
        self._customers: dict[UUID, CustomerState] = {}
        self._orders: dict[UUID, OrderState] = {}
        self._invoices: dict[UUID, InvoiceState] = {}
        self._credit_memos: dict[UUID, CreditMemoState] = {}

    # ---- reading the state ------------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The simulated clock: the time of the latest event (UTC)."""
        return self._now

    @property
    def organization_ids(self) -> tuple[UUID, ...]:
        return tuple(self._organizations)

    def organization(self, organization_id: UUID) -> OrganizationState:
        return _get(self._organizations, organization_id, "organization")

    def customer(self, customer_id: UUID) -> CustomerState:
        return _get(self._customers, customer_id, "customer")

    def customers_of(self, organization_id: UUID) -> list[CustomerState]:
        return [self._customers[c] for c in self.organization(organization_id).customers]

    def order(self, order_id: UUID) -> OrderState:
        return _get(self._orders, order_id, "sales order")

    def invoice(self, invoice_id: UUID) -> InvoiceState:
        return _get(self._invoices, invoice_id, "invoice")

    def credit_memo(self, credit_memo_id: UUID) -> CreditMemoState:
        return _get(self._credit_memos, credit_memo_id, "credit memo")

    def local_date(self, organization_id: UUID, instant: datetime) -> date:
        """The calendar date at ``instant`` in the organization's time zone (documents are dated locally)."""
        return instant.astimezone(self.organization(organization_id).zone).date()

    def new_id(self) -> UUID:
        """A fresh random (version 4) UUID drawn from the world's RNG, e.g. for a workflow's correlation id."""
        return UUID(int=self.rng.getrandbits(128), version=4)

    # ---- for the operations ---------------------------------------------------------------------------------------
    def _tick(self, at: datetime | None) -> datetime:
        """The time of the next event: ``at`` (aware) if given, else the clock plus a random, positive step."""
        if at is not None:
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError("at must be timezone-aware")
            instant = at.astimezone(UTC)
            self._now = max(self._now, instant)
            return instant
        step = self.rng.expovariate(1 / self.config.mean_seconds_between_events)
        self._now += timedelta(milliseconds=max(1, round(step * 1000)))
        return self._now

    def _envelope(
        self,
        model: type[E],
        org: OrganizationState,
        entity_id: UUID,
        version: int,
        payload: ContractModel,
        occurred_at: datetime,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> E:
        fields: dict[str, Any] = {
            "event_id": self.new_id(),
            "event_type": model.EVENT_TYPE,
            "schema_version": model.SCHEMA_VERSION,
            "occurred_at": occurred_at,
            "organization_id": org.organization_id,
            "entity_id": entity_id,
            "entity_version": version,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "payload": payload,
        }
        return model.model_validate(fields)


def _get(table: Mapping[UUID, V], key: UUID, kind: str) -> V:
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"unknown {kind} {key}") from None
