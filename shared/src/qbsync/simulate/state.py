"""What the simulated Batchly knows between events: organizations, customers, orders, invoices, credit memos.

The state exists so every generated event is causally and financially possible: a payment never exceeds an
invoice's balance, a void never hits an invoice with money on it, a refund never exceeds what can be refunded.
Each organization keeps "pools" of the entities eligible for each next step, so picking one is O(1) even after a
hundred thousand events.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from qbsync.contracts.batchly import CustomerPayload, InvoicePayload, OrganizationPayload
from qbsync.simulate.customers import CustomerCase
from qbsync.simulate.documents import Pick
from qbsync.simulate.names import City

__all__ = [
    "CreditMemoState",
    "CustomerState",
    "InvoiceState",
    "NotEligible",
    "Numbering",
    "OrderState",
    "OrderStatus",
    "OrganizationState",
    "Pool",
]

K = TypeVar("K")
ZERO = Decimal("0.00")
OrderStatus = Literal["draft", "approved", "invoiced", "cancelled"]


class NotEligible(ValueError):
    """The world's state does not allow the operation (e.g. voiding an invoice that has a payment)."""


class Pool(Generic[K]):
    """A set with O(1) add, discard and uniform random choice (deterministic for a seeded RNG: no hash order)."""

    __slots__ = ("_index", "_items")

    def __init__(self) -> None:
        self._items: list[K] = []
        self._index: dict[K, int] = {}

    def add(self, key: K) -> None:
        if key not in self._index:
            self._index[key] = len(self._items)
            self._items.append(key)

    def discard(self, key: K) -> None:
        position = self._index.pop(key, None)
        if position is None:
            return
        last = self._items.pop()
        if position < len(self._items):
            self._items[position] = last
            self._index[last] = position

    def set(self, key: K, member: bool) -> None:
        if member:
            self.add(key)
        else:
            self.discard(key)

    def choice(self, rng: random.Random) -> K:
        if not self._items:
            raise IndexError("choice from an empty pool")
        return self._items[rng.randrange(len(self._items))]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True)
class Numbering:
    """A per-organization document sequence: ``INV-000045``, ``INV-000046``, ... (a gap only when asked for)."""

    prefix: str
    width: int
    next_number: int = 1

    def take(self, *, gap: int = 0) -> str:
        if gap < 0:
            raise ValueError("gap must be >= 0")
        number = self.next_number + gap
        self.next_number = number + 1
        return f"{self.prefix}{number:0{self.width}d}"


@dataclass(slots=True)
class CustomerState:
    customer_id: UUID
    organization_id: UUID
    case: CustomerCase
    payload: CustomerPayload
    version: int
    terms: str
    exempt: bool
    #: The standing order: what this customer orders on ``weekdays`` (0 = Monday).
    template: tuple[Pick, ...]
    weekdays: frozenset[int]


@dataclass(slots=True)
class OrderState:
    order_id: UUID
    organization_id: UUID
    customer_id: UUID
    number: str
    picks: tuple[Pick, ...]
    event_id: UUID
    status: OrderStatus = "draft"


@dataclass(slots=True)
class InvoiceState:
    invoice_id: UUID
    organization_id: UUID
    payload: InvoicePayload
    version: int
    paid: Decimal = ZERO
    #: Sum of the totals of credit memos written against this invoice.
    credited: Decimal = ZERO
    #: The part of those credits that reduced this invoice's balance (the rest is customer credit).
    credit_applied: Decimal = ZERO
    refunded: Decimal = ZERO
    voided: bool = False

    @property
    def balance(self) -> Decimal:
        total: Decimal = self.payload.total
        return total - self.paid - self.credit_applied

    @property
    def voidable(self) -> bool:
        return not self.voided and self.paid == ZERO and self.credited == ZERO

    @property
    def creditable(self) -> Decimal:
        """How much more may still be credited (credits never exceed what was invoiced)."""
        total: Decimal = self.payload.total
        return ZERO if self.voided else total - self.credited

    @property
    def refundable(self) -> Decimal:
        return self.paid - self.refunded


@dataclass(slots=True)
class CreditMemoState:
    credit_memo_id: UUID
    organization_id: UUID
    customer_id: UUID
    invoice_id: UUID
    total: Decimal
    applied: Decimal
    refunded: Decimal = ZERO

    @property
    def refundable(self) -> Decimal:
        """Unapplied customer credit that can still be paid out."""
        return self.total - self.applied - self.refunded


@dataclass(slots=True)
class OrganizationState:
    organization_id: UUID
    payload: OrganizationPayload
    version: int
    home: City
    zone: ZoneInfo
    invoice_numbers: Numbering
    order_numbers: Numbering
    credit_memo_numbers: Numbering
    display_names: set[str] = field(default_factory=set)
    customers: list[UUID] = field(default_factory=list)
    active_customers: Pool[UUID] = field(default_factory=Pool)
    pending_orders: deque[UUID] = field(default_factory=deque)
    pushed_skus: set[str] = field(default_factory=set)
    open_invoices: Pool[UUID] = field(default_factory=Pool)
    voidable_invoices: Pool[UUID] = field(default_factory=Pool)
    creditable_invoices: Pool[UUID] = field(default_factory=Pool)
    refundable_invoices: Pool[UUID] = field(default_factory=Pool)
    refundable_credit_memos: Pool[UUID] = field(default_factory=Pool)

    def track_invoice(self, invoice: InvoiceState) -> None:
        """Re-file an invoice in the eligibility pools after any change to it."""
        key = invoice.invoice_id
        self.open_invoices.set(key, not invoice.voided and invoice.balance > ZERO)
        self.voidable_invoices.set(key, invoice.voidable)
        self.creditable_invoices.set(key, invoice.creditable > ZERO)
        self.refundable_invoices.set(key, invoice.refundable > ZERO)

    def track_credit_memo(self, memo: CreditMemoState) -> None:
        self.refundable_credit_memos.set(memo.credit_memo_id, memo.refundable > ZERO)
