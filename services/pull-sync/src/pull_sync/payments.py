"""Payment status, QuickBooks -> Batchly, for every invoice invoice-sync put into QuickBooks.

Which invoices a run looks at:

* incremental — those the change feed shows changed (Invoice), those its changed or deleted payments touch or
  touched (Payment; a deleted payment is traced through the payments each invoice had);
* full — every synced invoice;
* targeted — those a webhook named, directly or through a payment;
* always — invoices linked since the last run and never read (their link may have come after their changes), and
  unpaid invoices whose due date has passed since they were last seen (re-derived from the stored facts: becoming
  overdue changes nothing in QuickBooks).

Each is read with its payments, its status derived (:mod:`qbsync.domain.payment_status`) in the organization's time
zone, and ``InvoicePaymentChanged`` published only when the status, amounts, last payment date or method changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import events, store
from pull_sync.deps import Deps
from pull_sync.feed import Mode, Summary, commit_watermark, open_feed, publish_batches, read_by_ids
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import EntityRef, InvoicePaymentChanged, InvoicePaymentPayload
from qbsync.domain.payment_status import (
    InvoiceFacts,
    derive_status,
    facts_from_json,
    facts_to_json,
    invoice_facts,
    is_news,
    linked_invoice_ids,
    linked_payment_ids,
)
from qbsync.domain.pulls import ref_of
from qbsync.domain.schedule import local_today
from qbsync.persistence.organizations import get_organization
from qbsync.qbo import CdcResult, QboCompany

__all__ = ["PaymentPull"]

KIND = "payments"
Row = dict[str, Any]
_ZERO = Decimal("0.00")


@dataclass
class _Work:
    """The invoices one run looks at, and what is already in hand for them."""

    links: dict[str, store.InvoiceLink]
    invoices: dict[str, Row] = field(default_factory=dict)
    to_read: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    payments: dict[str, Row] = field(default_factory=dict)
    recheck: set[str] = field(default_factory=set)

    def want(self, ids: Iterable[str]) -> None:
        """Read these invoices (those invoice-sync put into QuickBooks; others are not Batchly's)."""
        self.to_read.update(i for i in ids if i in self.links and i not in self.invoices)

    @property
    def checked(self) -> set[str]:
        return set(self.invoices) | self.deleted | self.recheck


@dataclass(frozen=True, slots=True)
class _Checked:
    row: store.InvoiceStateRow
    envelope: InvoicePaymentChanged | None


class PaymentPull:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(
        self, org: UUID, *, mode: Mode, cause: AnyEnvelope | None, targets: Sequence[EntityRef] = ()
    ) -> Summary:
        company = self.deps.qbo.company(org)
        async with self.deps.exclusive(org, KIND):
            async with self.deps.db.connect() as conn:
                work = _Work(await store.invoice_links_of(conn, org))
            if mode == "targeted":
                summary = Summary(KIND, "targeted")
                await self._from_targets(company, org, work, targets)
                await self._finish(company, org, work, summary, cause)
                return summary
            start = await open_feed(
                self.deps, company, org, KIND, ["Invoice", "Payment"], full_requested=mode == "full"
            )
            summary = Summary(KIND, start.mode, start.reason)
            if start.cdc is not None:
                await self._from_feed(org, work, start.cdc)
            else:
                work.want(work.links)
            await self._finish(company, org, work, summary, cause)
            await commit_watermark(self.deps, org, KIND, start, summary)
            return summary

    # ---- which invoices ----------------------------------------------------------------------------------------------
    async def _from_feed(self, org: UUID, work: _Work, cdc: CdcResult) -> None:
        for row in cdc.changed("Invoice"):
            if str(row.get("Id")) in work.links:
                work.invoices[str(row["Id"])] = row
        work.deleted.update(i for i in cdc.deleted_ids("Invoice") if i in work.links)
        changed_payments = cdc.changed("Payment")
        for payment in changed_payments:
            work.payments[str(payment.get("Id"))] = payment
            work.want(linked_invoice_ids(payment))
        touched = [str(p.get("Id")) for p in changed_payments] + cdc.deleted_ids("Payment")
        async with self.deps.db.connect() as conn:
            work.want(await store.invoices_paid_by(conn, org, touched))

    async def _from_targets(self, company: QboCompany, org: UUID, work: _Work, targets: Sequence[EntityRef]) -> None:
        payment_ids = {t.qbo_id for t in targets if t.entity == "Payment"}
        work.want(t.qbo_id for t in targets if t.entity == "Invoice")
        if payment_ids:
            live = await read_by_ids(company, "Payment", payment_ids)
            work.payments.update(live)
            for payment in live.values():
                work.want(linked_invoice_ids(payment))
            async with self.deps.db.connect() as conn:  # what they paid before (also: deleted payments)
                work.want(await store.invoices_paid_by(conn, org, payment_ids))

    # ---- read, decide, publish ---------------------------------------------------------------------------------------
    async def _finish(
        self, company: QboCompany, org: UUID, work: _Work, summary: Summary, cause: AnyEnvelope | None
    ) -> None:
        async with self.deps.db.connect() as conn:
            work.want(await store.unchecked_invoices(conn, org))
            today = local_today(self.deps.clock(), (await get_organization(conn, org)).timezone)
            overdue = set(await store.overdue_candidates(conn, org, today))
        await self._read(company, work)
        work.recheck = {i for i in overdue if i in work.links} - set(work.invoices) - work.deleted
        method_names = await self._method_names(company, work.payments.values())
        async with self.deps.db.connect() as conn:
            states = await store.invoice_states(conn, org, work.checked)
        checked = [
            self._check(org, qbo_id, work, states.get(qbo_id), method_names, today, cause)
            for qbo_id in sorted(work.checked, key=lambda i: (len(i), i))
        ]
        summary.read += len(checked)
        news = [c for c in checked if c.envelope is not None]
        summary.changes.update(c.row.status for c in news)
        now = datetime.now(UTC)

        async def record(conn: AsyncConnection, batch: Sequence[_Checked]) -> None:
            await store.save_invoice_states(conn, org, [c.row for c in batch], now)

        await publish_batches(self.deps, news, _envelope, record)
        quiet = [c for c in checked if c.envelope is None]
        if quiet:
            async with self.deps.db.transaction() as conn:
                await record(conn, quiet)

    async def _read(self, company: QboCompany, work: _Work) -> None:
        """Fetch the invoices still needed (an Id QuickBooks no longer has was deleted) and all their payments."""
        found = await read_by_ids(company, "Invoice", work.to_read)
        work.invoices.update(found)
        work.deleted.update(work.to_read - set(found))
        needed = {pid for row in work.invoices.values() for pid in linked_payment_ids(row)} - set(work.payments)
        work.payments.update(await read_by_ids(company, "Payment", needed))

    @staticmethod
    async def _method_names(company: QboCompany, payments: Iterable[Row]) -> dict[str, str]:
        """Names of payment methods QuickBooks referenced by Id only."""
        refs = [ref_of(p.get("PaymentMethodRef")) for p in payments]
        unnamed = {method_id for method_id, name in refs if method_id and not name}
        if not unnamed:
            return {}
        rows = await read_by_ids(company, "PaymentMethod", unnamed, include_inactive=True)
        return {qbo_id: str(row.get("Name")) for qbo_id, row in rows.items() if row.get("Name")}

    def _check(
        self,
        org: UUID,
        qbo_id: str,
        work: _Work,
        before: store.InvoiceState | None,
        method_names: dict[str, str],
        today: date,
        cause: AnyEnvelope | None,
    ) -> _Checked:
        link = work.links[qbo_id]
        if qbo_id in work.invoices:
            facts = invoice_facts(work.invoices[qbo_id], work.payments, method_names)
        elif qbo_id in work.deleted:
            facts = InvoiceFacts(qbo_id, link.doc_number, _ZERO, _ZERO, None, deleted=True)
        else:  # re-derived from what was stored: only the date moved
            assert before is not None, "a recheck has stored facts"
            facts = facts_from_json(before.facts)
        status = derive_status(facts, today)
        news = is_news(status, before.fingerprint if before else None)
        now = self.deps.clock()
        version = events.next_version(before.version if before else None, facts.changed_at, now) if news else None
        row = store.InvoiceStateRow(
            qbo_invoice_id=qbo_id,
            status=status.status,
            due_date=facts.due_date,
            fingerprint=status.fingerprint(),
            version=version if version is not None else (before.version if before else 0),
            facts=facts_to_json(facts),
            payment_ids=facts.payment_ids,
            published=news,
        )
        if not news:
            return _Checked(row, None)
        assert version is not None
        payload = InvoicePaymentPayload(
            invoice_id=link.invoice_id,
            qbo_invoice_id=qbo_id,
            invoice_number=link.doc_number or facts.doc_number,
            status=status.status,
            total=status.total,
            amount_paid=status.amount_paid,
            amount_due=status.amount_due,
            last_payment_date=status.last_payment_date,
            payment_method=status.payment_method,
            qbo_last_updated=facts.changed_at or now,
        )
        occurred = now if qbo_id in work.recheck else (facts.changed_at or now)
        envelope = events.invoice_payment_changed(
            org, payload, version=version, digest=status.fingerprint(), occurred_at=occurred, cause=cause
        )
        return _Checked(row, envelope)


def _envelope(checked: _Checked) -> InvoicePaymentChanged:
    assert checked.envelope is not None
    return checked.envelope
