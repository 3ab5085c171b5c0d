"""``BatchlyWorld``: a deterministic simulation of Batchly that emits the domain events it would publish.

Each operation validates against the world's state, updates it, and returns one contract model, already validated:
``entity_version`` rises by one per event of an entity, ``event_id`` is fresh, and money adds up (see
``qbsync.simulate.pricing``). Operations that the state does not allow (void a paid invoice, pay a settled one)
raise ``NotEligible``. The clock and the event factory are in ``qbsync.simulate.world``; what happens after an
invoice is created in ``qbsync.simulate.billing``; the seed's workflows and the mixed stream in
``qbsync.simulate.workflows``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from qbsync.contracts.batchly import (
    CustomerCreated,
    CustomerUpdated,
    InvoiceCreated,
    ItemCreated,
    ItemPayload,
    OrganizationPayload,
    OrganizationUpserted,
    SalesOrderCreated,
)
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import documents, names, workflows
from qbsync.simulate.billing import BillingOperations
from qbsync.simulate.catalog import CatalogItem
from qbsync.simulate.customers import CustomerCase, CustomerChange, change_customer, new_customer, pick_case
from qbsync.simulate.documents import Pick, TaxChoice
from qbsync.simulate.state import (
    CustomerState,
    InvoiceState,
    NotEligible,
    Numbering,
    OrderState,
    OrganizationState,
)
from qbsync.simulate.world import WorldConfig

__all__ = ["ROUNDING_FALLBACK_TAX", "BatchlyWorld", "NotEligible", "WorldConfig"]

UpdateMode = Literal["immediate", "nightly"]
GapPolicy = Literal["warn", "block"]

#: The rate a rounding-sensitive invoice uses when its customer pays no tax (the case needs a rate > 0).
ROUNDING_FALLBACK_TAX: Final = TaxChoice("Los Angeles, CA", Decimal("9.975"))

_MODES: Final[tuple[UpdateMode, ...]] = ("immediate", "nightly")
_POLICIES: Final[tuple[GapPolicy, ...]] = ("warn", "block")
_TERM_NAMES: Final = tuple(documents.TERMS)
_TERM_WEIGHTS: Final = (20, 30, 50)
_CITY_BY_KEY: Final[dict[tuple[str | None, str | None], names.City]] = {(c.name, c.region): c for c in names.CITIES}


class BatchlyWorld(BillingOperations):
    """Organizations, customers and documents of a simulated Batchly, and the events that record their history.

    ``BatchlyWorld(seed, start=aware_datetime, catalog=DEFAULT_CATALOG, config=WorldConfig())``.
    """

    # ---- organizations ----------------------------------------------------------------------------------------------
    def add_organization(
        self,
        *,
        name: str | None = None,
        timezone: str | None = None,
        customer_update_mode: UpdateMode | None = None,
        invoice_number_gap_policy: GapPolicy | None = None,
        invoice_prefix: str | None = None,
        first_invoice_number: int = 1,
        at: datetime | None = None,
    ) -> OrganizationUpserted:
        rng = self.rng
        home = rng.choice([c for c in names.CITIES if c.timezone == timezone] or names.CITIES)
        zone_name = timezone or home.timezone
        organization_id = self.new_id()
        payload = OrganizationPayload(
            organization_id=organization_id,
            name=name or names.organization_name(rng),
            timezone=zone_name,
            customer_update_mode=customer_update_mode or rng.choices(_MODES, (7, 3))[0],
            invoice_number_gap_policy=invoice_number_gap_policy or rng.choices(_POLICIES, (8, 2))[0],
        )
        cfg = self.config
        prefix = cfg.invoice_prefix if invoice_prefix is None else invoice_prefix
        org = OrganizationState(
            organization_id=organization_id,
            payload=payload,
            version=1,
            home=home,
            zone=ZoneInfo(zone_name),
            invoice_numbers=Numbering(prefix, cfg.number_width, first_invoice_number),
            order_numbers=Numbering(cfg.order_prefix, cfg.number_width),
            credit_memo_numbers=Numbering(cfg.credit_memo_prefix, cfg.number_width),
        )
        self._organizations[organization_id] = org
        return self._envelope(OrganizationUpserted, org, organization_id, 1, payload, self._tick(at))

    def update_organization(
        self,
        organization_id: UUID,
        *,
        name: str | None = None,
        customer_update_mode: UpdateMode | None = None,
        invoice_number_gap_policy: GapPolicy | None = None,
        active: bool | None = None,
        at: datetime | None = None,
    ) -> OrganizationUpserted:
        """Change the given settings, or (none given) flip the update mode or the gap policy."""
        org = self.organization(organization_id)
        requested = {
            "name": name,
            "customer_update_mode": customer_update_mode,
            "invoice_number_gap_policy": invoice_number_gap_policy,
            "active": active,
        }
        changes: dict[str, object] = {key: value for key, value in requested.items() if value is not None}
        if not changes:
            current = org.payload
            if self.rng.random() < 0.5:
                changes["customer_update_mode"] = (
                    "nightly" if current.customer_update_mode == "immediate" else "immediate"
                )
            else:
                changes["invoice_number_gap_policy"] = (
                    "block" if current.invoice_number_gap_policy == "warn" else "warn"
                )
        org.payload = OrganizationPayload.model_validate({**dict(org.payload), **changes})
        org.version += 1
        return self._envelope(OrganizationUpserted, org, organization_id, org.version, org.payload, self._tick(at))

    # ---- customers and items ----------------------------------------------------------------------------------------
    def create_customer(
        self,
        organization_id: UUID,
        *,
        case: CustomerCase | None = None,
        at: datetime | None = None,
        correlation_id: UUID | None = None,
    ) -> CustomerCreated:
        org = self.organization(organization_id)
        rng, cfg = self.rng, self.config
        if case is None:
            case = pick_case(rng, hard_share=cfg.hard_case_share, invalid_share=cfg.invalid_share)
        customer_id = self.new_id()
        payload = new_customer(rng, customer_id, case, self._customer_city(org), org.display_names)
        self._customers[customer_id] = CustomerState(
            customer_id=customer_id,
            organization_id=organization_id,
            case=case,
            payload=payload,
            version=1,
            terms=rng.choices(_TERM_NAMES, _TERM_WEIGHTS)[0],
            exempt=rng.random() < cfg.tax_exempt_share,
            template=documents.template_picks(rng, organization_id, self.catalog),
            weekdays=frozenset(rng.sample(range(7), k=rng.randint(2, 6))),
        )
        org.customers.append(customer_id)
        org.active_customers.add(customer_id)
        return self._envelope(CustomerCreated, org, customer_id, 1, payload, self._tick(at), correlation_id)

    def update_customer(
        self,
        customer_id: UUID,
        *,
        change: CustomerChange | None = None,
        at: datetime | None = None,
        correlation_id: UUID | None = None,
    ) -> CustomerUpdated:
        """One change (new phone, e-mail, address, a rename, notes, deactivation, reactivation)."""
        customer = self.customer(customer_id)
        org = self.organization(customer.organization_id)
        payload, _ = change_customer(
            self.rng, customer.payload, customer.case, lambda: self._customer_city(org), org.display_names, change
        )
        customer.payload = payload
        customer.version += 1
        org.active_customers.set(customer_id, payload.active)
        return self._envelope(
            CustomerUpdated, org, customer_id, customer.version, payload, self._tick(at), correlation_id
        )

    def create_item(
        self, organization_id: UUID, item: CatalogItem | None = None, *, at: datetime | None = None
    ) -> ItemCreated:
        """Push a catalog item created in Batchly (rare; items normally come from QuickBooks). Once per item."""
        org = self.organization(organization_id)
        if item is None:
            remaining = [i for i in self.catalog if i.sku not in org.pushed_skus]
            if not remaining:
                raise NotEligible("every catalog item has already been pushed for this organization")
            item = self.rng.choice(remaining)
        elif item.sku in org.pushed_skus:
            raise NotEligible(f"item {item.sku} has already been pushed for this organization")
        org.pushed_skus.add(item.sku)
        item_id = documents.item_id_for(organization_id, item.sku)
        payload = ItemPayload(
            item_id=item_id,
            name=item.name,
            sku=item.sku,
            description=item.description,
            unit_price=item.unit_price,
            item_type=item.item_type,
            income_account_name=item.income_account_name,
            taxable=item.taxable,
        )
        return self._envelope(ItemCreated, org, item_id, 1, payload, self._tick(at))

    # ---- sales orders and invoices ----------------------------------------------------------------------------------
    def create_sales_order(
        self,
        organization_id: UUID,
        customer_id: UUID | None = None,
        *,
        line_count: int | None = None,
        at: datetime | None = None,
        correlation_id: UUID | None = None,
    ) -> SalesOrderCreated:
        """A draft order: the customer's standing order (or ``line_count`` random lines)."""
        org = self.organization(organization_id)
        customer = self._customer_for(org, customer_id)
        if line_count is None:
            picks = documents.standing_order(self.rng, organization_id, customer.template, self.catalog)
        else:
            picks = self._random_picks(organization_id, line_count)
        occurred = self._tick(at)
        order_id = self.new_id()
        number = org.order_numbers.take()
        payload = documents.order_payload(
            order_id, number, customer.customer_id, self.local_date(organization_id, occurred), picks
        )
        event = self._envelope(SalesOrderCreated, org, order_id, 1, payload, occurred, correlation_id)
        self._orders[order_id] = OrderState(
            order_id, organization_id, customer.customer_id, number, tuple(picks), event.event_id
        )
        org.pending_orders.append(order_id)
        return event

    def review_order(self, order_id: UUID, *, cancel_share: float = 0.03) -> bool:
        """The 8:05 review: adjust a few quantities and approve, or (rarely) cancel. Emits nothing: sales orders
        never leave Batchly. Returns whether the order was approved."""
        order = self.order(order_id)
        if order.status != "draft":
            raise NotEligible(f"order {order.number} is {order.status}, not a draft")
        rng = self.rng
        if rng.random() < cancel_share:
            order.status = "cancelled"
            self._forget_pending(order)
            return False
        order.picks = tuple(
            Pick(p.item, p.item_id, documents.jitter_quantity(rng, p.item, p.quantity), p.unit_price)
            if rng.random() < 0.1
            else p
            for p in order.picks
        )
        order.status = "approved"
        return True

    def create_invoice(
        self,
        organization_id: UUID,
        customer_id: UUID | None = None,
        *,
        order_id: UUID | None = None,
        line_count: int | None = None,
        rounding_sensitive: bool = False,
        number_gap: int = 0,
        at: datetime | None = None,
        correlation_id: UUID | None = None,
    ) -> InvoiceCreated:
        """An invoice from an order (``order_id``) or with random lines for a customer.

        ``number_gap`` skips that many invoice numbers first (to test gap detection). ``rounding_sensitive`` picks
        lines whose tax differs by a cent between per-line and whole-invoice rounding (at the customer's rate, or
        ``ROUNDING_FALLBACK_TAX`` for an exempt customer).
        """
        org = self.organization(organization_id)
        order = None
        if order_id is not None:
            if customer_id is not None or line_count is not None or rounding_sensitive:
                raise ValueError("an invoice made from an order takes its customer and lines from the order")
            order = self._invoiceable_order(org, order_id)
            customer = self.customer(order.customer_id)
        else:
            customer = self._customer_for(org, customer_id)
        tax = self._tax_for(customer, org)
        if rounding_sensitive:
            tax = tax if tax.percent else ROUNDING_FALLBACK_TAX
            picks = self._rounding_sensitive_picks(organization_id, line_count, tax)
        elif order is not None:
            picks = list(order.picks)
        else:
            count = self.rng.randint(*self.config.lines_per_invoice) if line_count is None else line_count
            picks = self._random_picks(organization_id, count)
        occurred = self._tick(at)
        invoice_id = self.new_id()
        payload = documents.invoice_payload(
            invoice_id=invoice_id,
            number=org.invoice_numbers.take(gap=number_gap),
            customer_id=customer.customer_id,
            order_id=order_id,
            invoice_date=self.local_date(organization_id, occurred),
            terms=customer.terms,
            memo=self._memo(order),
            lines=documents.document_lines(picks),
            tax=tax,
        )
        causation = order.event_id if order is not None else None
        event = self._envelope(InvoiceCreated, org, invoice_id, 1, payload, occurred, correlation_id, causation)
        invoice = InvoiceState(invoice_id, organization_id, payload, 1)
        self._invoices[invoice_id] = invoice
        org.track_invoice(invoice)
        if order is not None:
            order.status = "invoiced"
            self._forget_pending(order)
        return event

    # ---- workflows (qbsync.simulate.workflows) ----------------------------------------------------------------------
    def new_customer_workflow(self, organization_id: UUID, *, at: datetime | None = None) -> list[AnyEnvelope]:
        """Seed "New Customer Workflow": customer created -> first order -> approved -> invoiced."""
        return workflows.new_customer(self, organization_id, at=at)

    def daily_workflow(self, organization_id: UUID, day: date, *, max_orders: int | None = None) -> list[AnyEnvelope]:
        """Seed "Daily Order & Invoice Workflow" for one organization and local day (orders 8:00, invoices 8:20)."""
        return workflows.daily(self, organization_id, day, max_orders=max_orders)

    def mixed_stream(
        self, orgs: Sequence[UUID] | int, n_events: int, mix: Mapping[str, float] | None = None
    ) -> Iterator[AnyEnvelope]:
        """``n_events`` causally valid events across ``orgs`` (ids, or a number of new organizations)."""
        return workflows.mixed(self, orgs, n_events, mix)

    # ---- internals --------------------------------------------------------------------------------------------------
    def _customer_city(self, org: OrganizationState) -> names.City:
        """Most customers are local to the organization; some are anywhere."""
        return org.home if self.rng.random() < 0.7 else self.rng.choice(names.CITIES)

    def _customer_for(self, org: OrganizationState, customer_id: UUID | None) -> CustomerState:
        if customer_id is None:
            if not org.active_customers:
                raise NotEligible("the organization has no active customer")
            customer_id = org.active_customers.choice(self.rng)
        customer = self.customer(customer_id)
        if customer.organization_id != org.organization_id:
            raise ValueError("the customer belongs to another organization")
        return customer

    def _tax_for(self, customer: CustomerState, org: OrganizationState) -> TaxChoice:
        """Exempt, or the rate of the billing city (the organization's own city when the customer has no address)."""
        if customer.exempt:
            return TaxChoice(None, None)
        billing = customer.payload.billing_address
        city = _CITY_BY_KEY.get((billing.city, billing.region)) if billing else None
        city = city or org.home
        return TaxChoice(city.tax_rate_name, city.tax_percent)

    def _invoiceable_order(self, org: OrganizationState, order_id: UUID) -> OrderState:
        order = self.order(order_id)
        if order.organization_id != org.organization_id:
            raise ValueError("the order belongs to another organization")
        if order.status not in ("draft", "approved"):
            raise NotEligible(f"order {order.number} is {order.status}")
        return order

    def _forget_pending(self, order: OrderState) -> None:
        pending = self.organization(order.organization_id).pending_orders
        if order.order_id in pending:
            pending.remove(order.order_id)

    def _random_picks(self, organization_id: UUID, count: int, *, taxable_only: bool = False) -> list[Pick]:
        if not 1 <= count <= 1_000:
            raise ValueError("an invoice has 1 to 1000 lines")
        items = self._taxable_items if taxable_only else self.catalog
        if not items:
            raise ValueError("the catalog has no taxable item")
        return documents.random_picks(self.rng, organization_id, items, count)

    def _rounding_sensitive_picks(self, organization_id: UUID, line_count: int | None, tax: TaxChoice) -> list[Pick]:
        low, high = self.config.lines_per_invoice
        count = line_count if line_count is not None else self.rng.randint(max(2, low), max(2, high))
        if count < 2:
            raise ValueError("a rounding-sensitive invoice needs at least 2 lines")
        assert tax.percent is not None
        return documents.find_rounding_sensitive(
            lambda: self._random_picks(organization_id, count, taxable_only=True), tax.percent
        )

    def _memo(self, order: OrderState | None) -> str | None:
        parts = [f"Order {order.number}"] if order is not None else []
        if self.rng.random() < 0.4:
            parts.append(f"PO #{self.rng.randrange(10_000, 100_000)}")
        return "; ".join(parts) or None
