"""One invoice to QuickBooks: ``InvoiceCreated`` and the "Retry Sync" button (``SyncInvoiceRequested``).

gather (the snapshot is remembered first; customer, items, term, company preferences) -> decide (pre-sync validation
and the mapping, ``qbsync.domain.invoices``) -> write exactly once (:mod:`invoice_sync.writer`) -> verify what
QuickBooks stored -> record the link (committed at once, so a crash before the outcome cannot lose it) -> apply a
void that waited for this invoice.

A redelivered event whose invoice is already in QuickBooks answers with the outcome recorded for it; another event
for an invoice already synced answers ``unchanged`` with its QuickBooks id.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from invoice_sync import metrics, store
from invoice_sync.deps import Deps
from invoice_sync.references import Known
from invoice_sync.voids import VoidSync
from invoice_sync.writer import Claim, Conflict, Written, claim_in, write_once, writing
from qbsync.contracts.batchly import InvoicePayload
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import InvoiceNumberConflictDetected, InvoiceNumberConflictPayload, SyncWarning
from qbsync.domain.invoices import (
    DocumentRefs,
    Gap,
    find_gap,
    invoice_body,
    is_same_document,
    parse_number,
    suggest_next_number,
    validate_invoice,
    verify_document,
)
from qbsync.persistence.database import Database
from qbsync.persistence.organizations import OrganizationSettings, get_organization
from qbsync.qbo import QboQuery, request_id
from qbsync.runtime import Completed, DependencyNotReady, HandlerContext, PermanentError

__all__ = ["InvoiceSync", "Prepared", "Synced"]

VALIDATION_HINT = 'Correct the invoice in Batchly (cancel it and issue a corrected one), then "Retry Sync".'
_CONFLICT_NAMESPACE = uuid.UUID("3f4a8f0e-6c1b-5d2a-9e47-1b2c3d4e5f60")
Action = Literal["created", "linked", "unchanged"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """An invoice ready to be written: its QuickBooks references and body, and warnings found on the way."""

    invoice: InvoicePayload
    refs: DocumentRefs
    body: dict[str, Any]
    settings: OrganizationSettings
    warnings: tuple[SyncWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class Synced:
    qbo_id: str
    doc_number: str
    action: Action
    warnings: list[SyncWarning] = field(default_factory=list)
    needs_review: bool = False

    def completed(self) -> Completed:
        return Completed(
            action=self.action,
            qbo_id=self.qbo_id,
            qbo_doc_number=self.doc_number,
            warnings=self.warnings,
            needs_review=self.needs_review,
        )


class InvoiceSync:
    def __init__(self, deps: Deps, voids: VoidSync) -> None:
        self.deps = deps
        self.voids = voids

    # ---- the use case ----------------------------------------------------------------------------------------------
    async def on_invoice(self, ctx: HandlerContext, event: AnyEnvelope, *, batch: bool) -> Completed:
        invoice: InvoicePayload = event.payload
        org = event.organization_id
        document, early = await self.remember(
            ctx.db, org, invoice, event.entity_version, claim_for=event.event_id, lease=self.deps.lease
        )
        if document.synced:
            return (await self.already_synced(ctx.db, document, event.event_id)).completed()
        claiming = writing(
            ctx.db, document, event_id=event.event_id, lease=self.deps.lease, wait=self.deps.claim_wait, claimed=early
        )
        async with claiming as claim:
            if claim.document.synced:  # written by the attempt we waited for
                return (await self.already_synced(ctx.db, claim.document, event.event_id)).completed()
            prepared = await self.prepare(ctx.db, org, invoice)
            settings = prepared.settings
            await self.block_on_gap(ctx.db, org, invoice, settings, last_attempt=ctx.is_last_attempt)
            claim.writes()
            outcome = await write_once(
                body=prepared.body,
                request_id=request_id(event.event_id, "invoice.create"),
                uncertain=claim.uncertain,
                create=self._creator(org, batch=batch),
                find=lambda: self.find(org, invoice.invoice_number),
                ours=lambda row: is_same_document(row, customer_id=prepared.refs.customer_id, total=invoice.total),
            )
            if isinstance(outcome, Conflict):
                raise await self.conflict(ctx.db, event, invoice, outcome.holder, entity_version=event.entity_version)
            synced = await self.finish(
                ctx.db, org, prepared, outcome, event_id=event.event_id, settings=settings, claim=claim
            )
        return synced.completed()

    # ---- steps, shared with "Sync All Unsent Invoices" -------------------------------------------------------------
    async def remember(
        self,
        db: Database,
        org: UUID,
        invoice: InvoicePayload,
        version: int,
        *,
        claim_for: UUID | None = None,
        lease: timedelta | None = None,
    ) -> tuple[store.Document, Claim | None]:
        """Record the invoice (and its number, for gap detection) before anything can fail.

        With ``claim_for`` (the event about to write it) the write claim is tried in the same transaction, so the
        common case — nobody else writing it — costs one write transaction instead of two; the claim is then held
        while the invoice is prepared (see :class:`~invoice_sync.writer.Claim` for why that is safe).
        """
        parts = parse_number(invoice.invoice_number)
        now = datetime.now(UTC)
        claim: Claim | None = None
        async with db.transaction() as conn:
            written = await store.remember_document(
                conn,
                organization_id=org,
                kind="invoice",
                document_id=invoice.invoice_id,
                payload=invoice.model_dump(mode="json"),
                entity_version=version,
                now=now,
                number=invoice.invoice_number,
                number_prefix=parts.prefix if parts else None,
                number_seq=parts.sequence if parts else None,
                customer_id=invoice.customer_id,
            )
            document = written or await store.get_document(conn, org, "invoice", invoice.invoice_id)
            assert document is not None, "just remembered"
            if claim_for is not None and lease is not None and not document.synced:
                # The row is current: SQLite serialises write transactions, and on PostgreSQL remembering it locked
                # the row for this transaction (see store.remember_document), so the claim need not read it again.
                claim = await claim_in(conn, document, event_id=claim_for, lease=lease, now=now, current=True)
        return document, claim

    async def already_synced(self, db: Database, document: store.Document, event_id: UUID) -> Synced:
        """The outcome of an invoice already in QuickBooks (and a waiting void applied, if a crash left one)."""
        assert document.qbo_id is not None, "a synced document has a QuickBooks id"
        await self.voids.apply_pending(db, document.organization_id, document.document_id, document.qbo_id)
        action: Action = "unchanged"
        if document.synced_event_id == event_id and document.action == "created":
            action = "created"
        elif document.synced_event_id == event_id and document.action == "linked":
            action = "linked"
        return Synced(
            qbo_id=document.qbo_id,
            doc_number=document.qbo_doc_number or document.number or "",
            action=action,
            warnings=[SyncWarning.model_validate(w) for w in document.warnings],
            needs_review=document.needs_review,
        )

    async def prepare(self, db: Database, org: UUID, invoice: InvoicePayload) -> Prepared:
        """Validation, company preferences, items, customer, term; permanent problems mark the invoice failed.

        The company's preferences, the items and the term are resolved side by side: for a company new to the
        service each is a QuickBooks look-up, and one after the other they held its first batch back by several
        round trips. A company-level problem (custom numbers off, currency) is still reported before an item's.
        """
        references = self.deps.references
        try:
            problems = validate_invoice(invoice, today=datetime.now(UTC).date())
            if problems:
                raise PermanentError(
                    f"invoice {invoice.invoice_number} failed pre-sync validation: {'; '.join(map(str, problems))}",
                    code="validation",
                    field=problems[0].field,
                    hint=VALIDATION_HINT,
                )
            facts, items, term = await asyncio.gather(
                references.require_document_numbers(org, currency=invoice.currency),
                self._items(db, org, invoice),
                references.term_id(org, invoice.terms) if invoice.terms else _no_term(),
                return_exceptions=True,
            )
            for result in (facts, items):
                if isinstance(result, BaseException):
                    raise result
        except PermanentError as exc:
            await self._mark_failed(db, org, invoice.invoice_id, exc.message)
            raise
        if isinstance(term, BaseException):
            raise term
        assert not isinstance(items, BaseException)
        known, item_ids = items
        customer_id = await references.customer_id(db, org, invoice.customer_id, known=known)
        warnings: list[SyncWarning] = []
        if invoice.terms and term is None:
            warnings.append(
                SyncWarning(
                    code="unknown_terms",
                    message=f"terms {invoice.terms!r} do not exist in QuickBooks; the invoice carries Batchly's "
                    "due date without a QuickBooks term",
                )
            )
        refs = DocumentRefs(customer_id, item_ids, term)
        return Prepared(invoice, refs, invoice_body(invoice, refs), known.settings, tuple(warnings))

    async def _items(self, db: Database, org: UUID, invoice: InvoicePayload) -> tuple[Known, tuple[str, ...]]:
        references = self.deps.references
        known = await references.known(db, org, invoice.customer_id, invoice.lines)
        return known, await references.item_ids(db, org, invoice.lines, known=known)

    async def organization(self, db: Database, org: UUID) -> OrganizationSettings:
        async with db.connect() as conn:
            return await get_organization(conn, org)

    async def gap(self, db: Database, org: UUID, invoice: InvoicePayload) -> Gap | None:
        async with db.connect() as conn:
            return await self.gap_in(conn, org, invoice)

    @staticmethod
    async def gap_in(conn: AsyncConnection, org: UUID, invoice: InvoicePayload) -> Gap | None:
        parts = parse_number(invoice.invoice_number)
        if parts is None:
            return None
        highest, predecessor = await store.number_neighbours(conn, org, prefix=parts.prefix, sequence=parts.sequence)
        return find_gap(parts, highest_below=highest, predecessor_seen=predecessor)

    async def block_on_gap(
        self, db: Database, org: UUID, invoice: InvoicePayload, settings: OrganizationSettings, *, last_attempt: bool
    ) -> None:
        """Gap policy "block": wait (the ladder) while the missing invoice may still arrive, then fail clearly."""
        if settings.invoice_number_gap_policy != "block":
            return
        gap = await self.gap(db, org, invoice)
        if gap is None:
            return
        if last_attempt:
            metrics.NUMBER_GAPS.labels("block").inc()
            message = f"{gap.message}; this organization blocks invoices after a gap in the numbering"
            await self._mark_failed(db, org, invoice.invoice_id, message)
            raise PermanentError(
                message,
                code="number_gap",
                field="invoice_number",
                hint=f"Sync {gap.missing_first} first (or set the gap policy to warn), then retry this invoice.",
            )
        raise DependencyNotReady(f"{gap.message}; waiting for it (gap policy: block)", code="number_gap")

    async def find(self, org: UUID, number: str) -> list[dict[str, Any]]:
        page = await self.deps.qbo.company(org).query(QboQuery.select("Invoice").where("DocNumber", "=", number))
        return [row for row in page.rows if row.get("DocNumber") == number]

    async def finish(
        self,
        db: Database,
        org: UUID,
        prepared: Prepared,
        written: Written,
        *,
        event_id: UUID,
        settings: OrganizationSettings,
        claim: Claim | None = None,
    ) -> Synced:
        """Verify what QuickBooks stored, record the link (committed now; with ``claim``, the write claim ends in the
        same transaction), apply a waiting void."""
        invoice, row = prepared.invoice, written.row
        mismatches = verify_document(
            row,
            doc_number=invoice.invoice_number,
            total=invoice.total,
            tax_total=invoice.tax_total,
            customer_id=prepared.refs.customer_id,
            lines=invoice.lines,
            item_ids=prepared.refs.item_ids,
        )
        warnings = list(prepared.warnings)
        for mismatch in mismatches:
            metrics.MISMATCHES.labels(mismatch.kind).inc()
            warnings.append(SyncWarning(code=f"mismatch_{mismatch.kind}", message=mismatch.message))
        qbo_id = str(row["Id"])
        doc_number = str(row.get("DocNumber") or invoice.invoice_number)
        async with db.transaction() as conn:
            if settings.invoice_number_gap_policy == "warn":
                # Checked after the write: a predecessor processed concurrently has had time to be seen.
                gap = await self.gap_in(conn, org, invoice)
                if gap is not None:
                    metrics.NUMBER_GAPS.labels("warn").inc()
                    warnings.append(SyncWarning(code="number_gap", message=gap.message))
            synced = Synced(qbo_id, doc_number, written.action, warnings, bool(mismatches))
            await store.mark_synced(
                conn,
                org,
                "invoice",
                invoice.invoice_id,
                qbo_entity="Invoice",
                qbo_id=qbo_id,
                qbo_doc_number=synced.doc_number,
                action=written.action,
                warnings=[w.model_dump() for w in warnings],
                needs_review=synced.needs_review,
                event_id=event_id,
                now=datetime.now(UTC),
            )
            if claim is not None:
                await claim.release_in(conn)
            # A void stores its request, then looks at the invoice; this side stores the link, then looks for a
            # request — so one of the two sees the other. Looking inside this transaction is only sound where write
            # transactions are serialised (SQLite: the void's request commits after this link); elsewhere, look
            # after the commit.
            pending = await store.get_pending_void(conn, org, invoice.invoice_id) if db.serialises_writes else None
        if claim is not None:
            claim.mark_released()
        if db.serialises_writes:
            await self.voids.apply_waiting(db, org, invoice.invoice_id, qbo_id, pending)
        else:
            await self.voids.apply_pending(db, org, invoice.invoice_id, qbo_id)
        return synced

    async def conflict(
        self,
        db: Database,
        event: AnyEnvelope,
        invoice: InvoicePayload,
        holder: dict[str, Any],
        *,
        entity_version: int,
        source_event_id: UUID | None = None,
    ) -> PermanentError:
        """Seed error 3: another invoice holds the number. Publish the counter reset; the caller raises the error.

        The event is published here, not through the outcome (a failed record has no outcome that publishes); its
        id is derived from the source event (``source_event_id``: a bulk command's per-invoice id), so publishing it
        again on a retry is de-duplicated downstream.
        """
        org = event.organization_id
        parts = parse_number(invoice.invoice_number)
        query = QboQuery.select("Invoice")
        if parts is not None and parts.prefix:
            query = query.where("DocNumber", "LIKE", f"{parts.prefix}%")
        numbers = [str(row.get("DocNumber") or "") async for row in self.deps.qbo.company(org).query_all(query)]
        suggested = suggest_next_number(invoice.invoice_number, numbers)
        notice = InvoiceNumberConflictDetected(
            event_id=uuid.uuid5(_CONFLICT_NAMESPACE, f"{source_event_id or event.event_id}:{self.deps.service}"),
            event_type="InvoiceNumberConflictDetected",
            schema_version=1,
            occurred_at=datetime.now(UTC),
            organization_id=org,
            entity_id=invoice.invoice_id,
            entity_version=entity_version,
            correlation_id=event.correlation_id or event.event_id,
            causation_id=event.event_id,
            payload=InvoiceNumberConflictPayload(
                invoice_id=invoice.invoice_id,
                invoice_number=invoice.invoice_number,
                conflicting_qbo_id=str(holder["Id"]),
                suggested_next_number=suggested,
            ),
        )
        await self.deps.publisher.publish(notice)
        metrics.NUMBER_CONFLICTS.inc()
        message = (
            f'invoice number "{invoice.invoice_number}" already exists in QuickBooks (Invoice {holder["Id"]}, '
            "another customer or total); Batchly's numbering and QuickBooks' have diverged"
        )
        await self._mark_failed(db, org, invoice.invoice_id, message)
        return PermanentError(
            message,
            code="6140",
            field="invoice_number",
            hint=f"Check QuickBooks for invoices entered by hand, reset Batchly's invoice counter to {suggested} "
            "(highest QuickBooks number + 1), and re-issue this invoice under a new number.",
        )

    # ---- helpers ---------------------------------------------------------------------------------------------------
    def _creator(self, org: UUID, *, batch: bool) -> Any:
        batcher = self.deps.batcher if batch else None
        company = self.deps.qbo.company(org)

        async def create(body: dict[str, Any], rid: str) -> dict[str, Any]:
            if batcher is not None:
                return await batcher.create(org, "Invoice", body, request_id=rid)
            return await company.create("Invoice", body, request_id=rid)

        return create

    async def _mark_failed(self, db: Database, org: UUID, invoice_id: UUID, message: str) -> None:
        async with db.transaction() as conn:
            await store.mark_failed(conn, org, "invoice", invoice_id, error=message, now=datetime.now(UTC))


async def _no_term() -> None:
    return None
