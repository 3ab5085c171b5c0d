"""Inbound contracts: the domain events and commands Batchly publishes.

Each payload is the entity's full state at ``entity_version`` (event-carried state), so a consumer can converge on
the newest snapshot without asking Batchly anything. Field caps here only reject absurd input; QuickBooks' own limits
are checked by the services' pre-sync validation, which names the field in its failure.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints

from qbsync import topics
from qbsync.contracts.envelope import ContractModel, Envelope
from qbsync.contracts.registry import event
from qbsync.contracts.types import (
    CountryCode,
    CurrencyCode,
    LongText,
    Money,
    NonNegativeMoney,
    PositiveMoney,
    Quantity,
    Rate,
    ShortText,
    TaxPercent,
    Text,
)

__all__ = [
    "Address",
    "CreditMemoCreated",
    "CreditMemoPayload",
    "CustomerCreated",
    "CustomerPayload",
    "CustomerUpdated",
    "DocumentLine",
    "FlushCustomerUpdatesRequested",
    "InvoiceCreated",
    "InvoicePayload",
    "InvoiceUpdated",
    "InvoiceVoided",
    "InvoiceVoidedPayload",
    "ItemCreated",
    "ItemPayload",
    "OrderLine",
    "OrganizationPayload",
    "OrganizationUpserted",
    "PaymentApplication",
    "PaymentRecorded",
    "PaymentRecordedPayload",
    "PullSyncRequestedPayload",
    "RefundIssued",
    "RefundIssuedPayload",
    "SalesOrderCreated",
    "SalesOrderPayload",
    "SyncAllCustomersRequested",
    "SyncAllUnsentInvoicesRequested",
    "SyncCustomerRequested",
    "SyncInvoiceRequested",
    "SyncItemsRequested",
    "SyncPaymentsRequested",
    "SyncScopePayload",
    "SyncTaxRequested",
]

DocumentNumber = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# ---- organizations -------------------------------------------------------------------------------------------------
class OrganizationPayload(ContractModel):
    organization_id: UUID
    name: ShortText
    #: IANA time zone; the scheduler runs the 2/3/4 AM jobs in it.
    timezone: TimeZone = "America/Los_Angeles"
    #: Seed §1: customer updates sync immediately or in the nightly 3 AM batch.
    customer_update_mode: Literal["immediate", "nightly"] = "immediate"
    #: Invoice-number gaps found by pre-sync validation: warn (default) or block the invoice.
    invoice_number_gap_policy: Literal["warn", "block"] = "warn"
    active: bool = True


@event(topic=topics.BATCHLY_ORGANIZATIONS, entity_type="organization")
class OrganizationUpserted(Envelope[OrganizationPayload]):
    """An organization was created or its sync settings changed."""

    event_type: Literal["OrganizationUpserted"]
    schema_version: Literal[1]


# ---- customers -----------------------------------------------------------------------------------------------------
class Address(ContractModel):
    line1: Text | None = None
    line2: Text | None = None
    line3: Text | None = None
    city: Text | None = None
    #: State / province code, e.g. "CA".
    region: Text | None = None
    postal_code: Text | None = None
    country: CountryCode | None = None


class CustomerPayload(ContractModel):
    customer_id: UUID
    display_name: Annotated[str, StringConstraints(max_length=1_000)]
    company_name: Text | None = None
    given_name: Text | None = None
    family_name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    active: bool = True
    notes: LongText | None = None


@event(topic=topics.BATCHLY_CUSTOMERS, entity_type="customer")
class CustomerCreated(Envelope[CustomerPayload]):
    """A customer was created in Batchly."""

    event_type: Literal["CustomerCreated"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_CUSTOMERS, entity_type="customer")
class CustomerUpdated(Envelope[CustomerPayload]):
    """A customer changed in Batchly (address, phone, email, name, deactivation, ...)."""

    event_type: Literal["CustomerUpdated"]
    schema_version: Literal[1]


# ---- items ---------------------------------------------------------------------------------------------------------
class ItemPayload(ContractModel):
    item_id: UUID
    name: ShortText
    sku: Text | None = None
    description: LongText | None = None
    unit_price: Rate
    #: Batchly sells products (QuickBooks Inventory) and services.
    item_type: Literal["product", "service"] = "service"
    income_account_name: Text | None = None
    taxable: bool = True
    active: bool = True


@event(topic=topics.BATCHLY_ITEMS, entity_type="item")
class ItemCreated(Envelope[ItemPayload]):
    """An item was created in Batchly (rare: items normally come from QuickBooks); it is pushed to QuickBooks."""

    event_type: Literal["ItemCreated"]
    schema_version: Literal[1]


# ---- sales orders (never synced) -----------------------------------------------------------------------------------
class OrderLine(ContractModel):
    line_number: int = Field(ge=1, le=10_000)
    item_id: UUID
    description: Text | None = None
    quantity: Quantity
    unit_price: Rate
    amount: Money


class SalesOrderPayload(ContractModel):
    order_id: UUID
    order_number: DocumentNumber
    customer_id: UUID
    order_date: date
    delivery_date: date | None = None
    status: Literal["draft", "approved", "fulfilled", "invoiced", "cancelled"]
    lines: list[OrderLine] = Field(max_length=1_000)
    total: Money


@event(topic=topics.BATCHLY_ORDERS, entity_type="sales_order")
class SalesOrderCreated(Envelope[SalesOrderPayload]):
    """A sales order was created. Sales orders stay in Batchly: consumers record an "ignored" outcome."""

    event_type: Literal["SalesOrderCreated"]
    schema_version: Literal[1]


# ---- invoices ------------------------------------------------------------------------------------------------------
class DocumentLine(ContractModel):
    """One line of an invoice or credit memo, in display order."""

    line_number: int = Field(ge=1, le=10_000, description="1-based position; QuickBooks keeps the same order.")
    item_id: UUID
    sku: Text | None = None
    description: Text | None = None
    quantity: Quantity
    unit_price: Rate
    amount: Money
    taxable: bool = True


class InvoicePayload(ContractModel):
    invoice_id: UUID
    #: Becomes QuickBooks' DocNumber exactly (QuickBooks auto-numbering is never used).
    invoice_number: DocumentNumber
    customer_id: UUID
    order_id: UUID | None = None
    invoice_date: date
    due_date: date
    terms: Text | None = None
    memo: LongText | None = None
    lines: list[DocumentLine] = Field(min_length=1, max_length=1_000)
    subtotal: Money
    tax_total: NonNegativeMoney
    #: The tax rate Batchly applied (from the QuickBooks rates it pulled), for reference.
    tax_rate_name: Text | None = None
    tax_percent: TaxPercent | None = None
    total: Money
    currency: CurrencyCode = "USD"


@event(topic=topics.BATCHLY_INVOICES, entity_type="invoice")
class InvoiceCreated(Envelope[InvoicePayload]):
    """An invoice was created in Batchly; it is pushed to QuickBooks once."""

    event_type: Literal["InvoiceCreated"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_INVOICES, entity_type="invoice")
class InvoiceUpdated(Envelope[InvoicePayload]):
    """An invoice changed in Batchly. Invoices are immutable in QuickBooks: consumers ignore it with a reason."""

    event_type: Literal["InvoiceUpdated"]
    schema_version: Literal[1]


class InvoiceVoidedPayload(ContractModel):
    invoice_id: UUID
    invoice_number: DocumentNumber
    voided_at: AwareDatetime
    reason: Text | None = None


@event(topic=topics.BATCHLY_INVOICES, entity_type="invoice")
class InvoiceVoided(Envelope[InvoiceVoidedPayload]):
    """An invoice was cancelled in Batchly; it is voided in QuickBooks."""

    event_type: Literal["InvoiceVoided"]
    schema_version: Literal[1]


# ---- credit memos --------------------------------------------------------------------------------------------------
class CreditMemoPayload(ContractModel):
    credit_memo_id: UUID
    credit_memo_number: DocumentNumber
    customer_id: UUID
    #: The invoice this credit corrects, if any.
    invoice_id: UUID | None = None
    credit_date: date
    lines: list[DocumentLine] = Field(min_length=1, max_length=1_000)
    subtotal: Money
    tax_total: NonNegativeMoney
    total: Money
    memo: LongText | None = None
    currency: CurrencyCode = "USD"


@event(topic=topics.BATCHLY_CREDIT_MEMOS, entity_type="credit_memo")
class CreditMemoCreated(Envelope[CreditMemoPayload]):
    """A credit memo was created in Batchly; it is pushed to QuickBooks and applied to the customer's balance."""

    event_type: Literal["CreditMemoCreated"]
    schema_version: Literal[1]


# ---- payments and refunds ------------------------------------------------------------------------------------------
class PaymentApplication(ContractModel):
    invoice_id: UUID
    amount: PositiveMoney


class PaymentRecordedPayload(ContractModel):
    payment_id: UUID
    customer_id: UUID
    amount: PositiveMoney
    payment_date: date
    method: Literal["credit_card", "ach", "check", "cash", "other"] = "credit_card"
    #: Processor reference, e.g. the Stripe charge id.
    reference: Text | None = None
    applications: list[PaymentApplication] = Field(min_length=1, max_length=100)
    currency: CurrencyCode = "USD"


@event(topic=topics.BATCHLY_PAYMENTS, entity_type="payment")
class PaymentRecorded(Envelope[PaymentRecordedPayload]):
    """A customer paid through Batchly's portal; the payment is recorded in QuickBooks against the invoice(s)."""

    event_type: Literal["PaymentRecorded"]
    schema_version: Literal[1]


class RefundIssuedPayload(ContractModel):
    refund_id: UUID
    customer_id: UUID
    amount: PositiveMoney
    refund_date: date
    method: Literal["credit_card", "ach", "check", "cash", "other"] = "credit_card"
    #: Refund of an unapplied credit memo, or of a paid invoice (exactly one of the two).
    credit_memo_id: UUID | None = None
    invoice_id: UUID | None = None
    reason: Text | None = None
    reference: Text | None = None
    currency: CurrencyCode = "USD"


@event(topic=topics.BATCHLY_PAYMENTS, entity_type="refund")
class RefundIssued(Envelope[RefundIssuedPayload]):
    """Money was refunded to a customer in Batchly; the matching refund is recorded in QuickBooks."""

    event_type: Literal["RefundIssued"]
    schema_version: Literal[1]


# ---- commands (manual and scheduled syncs) -------------------------------------------------------------------------
class SyncScopePayload(ContractModel):
    """Scope of a bulk command."""

    #: Who asked: a person in Batchly's UI, the scheduler, or an operator's CLI.
    requested_by: Text = "batchly"
    #: Only entities not yet synced or whose last sync failed (default), or every entity.
    only_unsynced: bool = True


class PullSyncRequestedPayload(ContractModel):
    requested_by: Text = "batchly"
    #: Full reload instead of the incremental change feed.
    full: bool = False


@event(topic=topics.BATCHLY_COMMANDS, entity_type="customer")
class SyncCustomerRequested(Envelope[CustomerPayload]):
    """The "Sync to QB" button pressed for one customer; carries the customer's current snapshot."""

    event_type: Literal["SyncCustomerRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="customer")
class SyncAllCustomersRequested(Envelope[SyncScopePayload]):
    """The "Sync All Customers Now" command; entity_id is the organization id."""

    event_type: Literal["SyncAllCustomersRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="customer")
class FlushCustomerUpdatesRequested(Envelope[SyncScopePayload]):
    """Push the customer updates held for the nightly batch (the 3 AM job); entity_id is the organization id."""

    event_type: Literal["FlushCustomerUpdatesRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="invoice")
class SyncInvoiceRequested(Envelope[InvoicePayload]):
    """The "Retry Sync" button pressed for one invoice; carries the invoice's snapshot."""

    event_type: Literal["SyncInvoiceRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="invoice")
class SyncAllUnsentInvoicesRequested(Envelope[SyncScopePayload]):
    """The "Sync All Unsent Invoices" command; entity_id is the organization id."""

    event_type: Literal["SyncAllUnsentInvoicesRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="item")
class SyncItemsRequested(Envelope[PullSyncRequestedPayload]):
    """The "Sync Items Now" command; entity_id is the organization id."""

    event_type: Literal["SyncItemsRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="payment_status")
class SyncPaymentsRequested(Envelope[PullSyncRequestedPayload]):
    """The "Sync Payments Now" command; entity_id is the organization id."""

    event_type: Literal["SyncPaymentsRequested"]
    schema_version: Literal[1]


@event(topic=topics.BATCHLY_COMMANDS, entity_type="tax_rate")
class SyncTaxRequested(Envelope[PullSyncRequestedPayload]):
    """The "Sync Tax Rates" command; entity_id is the organization id."""

    event_type: Literal["SyncTaxRequested"]
    schema_version: Literal[1]
