""" "Sync All Unsent Invoices": every invoice of the organization not in QuickBooks yet, through ``/batch``.

Invoices are taken in number order, prepared one by one (a permanent problem or a missing customer is recorded for
that invoice and the rest go on), then sent 30 to a batch request within the company's request budget (the client's
limiter). Each invoice gets its own ledger row and result as it completes, so progress shows while the command runs;
the command's own outcome carries the summary. A temporary failure (throttling, an outage) stops the run after the
current batch and the command retries: invoices already synced are not unsent any more, and those whose batch's
outcome is unknown are looked up by number before anything is created again. One run handles at most
``bulk_max_per_run`` invoices (so it fits the handler's time budget); the summary says how many are left for the
next "Sync All Unsent Invoices". There is deliberately no automatic continuation: invoices that keep failing would
make it loop.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from invoice_sync import metrics, store
from invoice_sync.batcher import content_request_prefix
from invoice_sync.deps import Deps
from invoice_sync.invoices import InvoiceSync, Prepared
from invoice_sync.outcomes import Child, child_event_id, record_child
from invoice_sync.writer import Conflict, Written, find_existing
from qbsync.contracts.batchly import InvoicePayload, SyncAllUnsentInvoicesRequested
from qbsync.contracts.outbound import SyncWarning
from qbsync.domain.invoices import is_same_document
from qbsync.persistence.organizations import OrganizationSettings
from qbsync.qbo import BatchOperation, request_id
from qbsync.qbo.errors import QboDuplicateDocNumberError, QboError
from qbsync.runtime import Completed, HandlerContext, SyncError, TransientError
from qbsync.runtime.errors import Classified, classify

__all__ = ["BulkInvoiceSync"]

_CHUNK = 30


@dataclass
class _Ready:
    document: store.Document
    prepared: Prepared
    child: Child
    started: datetime


@dataclass
class _Tally:
    synced: int = 0
    failed: int = 0
    waiting: int = 0
    busy: int = 0
    temporary: list[Classified] = field(default_factory=list)

    def summary(self, total: int, *, more: bool) -> str:
        text = f"{self.synced} synced, {self.failed} failed, {self.waiting} waiting (of {total})"
        if self.busy:
            text += f"; {self.busy} being synced by another event"
        if self.temporary:
            text += f"; {len(self.temporary)} hit a temporary QuickBooks failure and are retried"
        return text + ("; more remain: run Sync All Unsent Invoices again" if more else "")


class BulkInvoiceSync:
    def __init__(self, deps: Deps, invoices: InvoiceSync) -> None:
        self.deps = deps
        self.invoices = invoices

    async def sync_unsent(self, ctx: HandlerContext, event: SyncAllUnsentInvoicesRequested) -> Completed:
        org = event.organization_id
        limit = self.deps.settings.bulk_max_per_run
        async with ctx.db.connect() as conn:
            documents = await store.documents_to_sync(conn, org, "invoice", ("pending", "failed"), limit=limit + 1)
        more = len(documents) > limit
        documents = documents[:limit]
        settings = await self.invoices.organization(ctx.db, org)
        tally = _Tally()
        ready = [r for d in documents if (r := await self._prepare(ctx, event, d, settings, tally)) is not None]
        for start in range(0, len(ready), _CHUNK):
            await self._send(ctx, event, ready[start : start + _CHUNK], settings, tally)
        if tally.temporary:
            first = tally.temporary[0]
            raise TransientError(
                f"{len(tally.temporary)} invoice(s) hit a temporary QuickBooks failure ({first.message}); "
                f"progress so far: {tally.summary(len(documents), more=more)}",
                code=first.code,
            )
        summary = SyncWarning(code="bulk_summary", message=tally.summary(len(documents), more=more))
        return Completed(action="applied", warnings=[summary])

    async def _prepare(
        self,
        ctx: HandlerContext,
        event: SyncAllUnsentInvoicesRequested,
        document: store.Document,
        settings: OrganizationSettings,
        tally: _Tally,
    ) -> _Ready | None:
        invoice = InvoicePayload.model_validate_json(json.dumps(document.payload))  # stored as JSON
        child = Child(
            child_event_id(event.event_id, invoice.invoice_id),
            "invoice",
            invoice.invoice_id,
            document.entity_version,
            invoice.invoice_number,
        )
        started = datetime.now(UTC)
        try:
            prepared = await self.invoices.prepare(ctx.db, event.organization_id, invoice)
            await self.invoices.block_on_gap(ctx.db, event.organization_id, invoice, settings, last_attempt=False)
        except (SyncError, QboError) as exc:
            error = classify(exc)
            if error.error_class not in ("permanent", "dependency"):
                raise
            await self._child(ctx, event, child, started, error=error)
            if error.error_class == "permanent":
                tally.failed += 1
            else:
                tally.waiting += 1
            return None
        return _Ready(document, prepared, child, started)

    async def _lookup(self, org: UUID, item: _Ready) -> Written | Conflict | None:
        invoice, customer_id = item.prepared.invoice, item.prepared.refs.customer_id
        return await find_existing(
            lambda: self.invoices.find(org, invoice.invoice_number),
            lambda row: is_same_document(row, customer_id=customer_id, total=invoice.total),
        )

    async def _send(
        self,
        ctx: HandlerContext,
        event: SyncAllUnsentInvoicesRequested,
        chunk: list[_Ready],
        settings: OrganizationSettings,
        tally: _Tally,
    ) -> None:
        if not chunk:
            return
        org = event.organization_id
        claim, now = uuid.uuid4(), datetime.now(UTC)
        won: list[tuple[_Ready, bool]] = []
        async with ctx.db.transaction() as conn:  # the claims and write-ahead intents of the batch, before it leaves
            for item in chunk:
                ok, previous = await store.claim_write(
                    conn,
                    org,
                    "invoice",
                    item.document.document_id,
                    claim=claim,
                    event_id=item.child.event_id,
                    now=now,
                    stale_before=now - self.deps.lease,
                )
                if ok:
                    won.append((item, previous is not None))
                else:  # a live attempt is writing it right now; it reports its own outcome
                    tally.busy += 1
        try:
            fresh = []
            for item, uncertain in won:  # an earlier write may have happened: look before creating again
                existing = await self._lookup(org, item) if uncertain else None
                if existing is None:
                    fresh.append(item)
                else:
                    await self._settle(ctx, event, item, existing, settings, tally)
            if fresh:
                await self._send_claimed(ctx, event, fresh, settings, tally)
        finally:
            async with ctx.db.transaction() as conn:
                for item, _ in won:
                    await store.release_write(conn, org, "invoice", item.document.document_id, claim=claim)

    async def _send_claimed(
        self,
        ctx: HandlerContext,
        event: SyncAllUnsentInvoicesRequested,
        chunk: list[_Ready],
        settings: OrganizationSettings,
        tally: _Tally,
    ) -> None:
        org = event.organization_id
        request_ids = [request_id(item.child.event_id, "invoice.create") for item in chunk]
        metrics.BATCH_ITEMS.labels("bulk").observe(len(chunk))
        results = await self.deps.qbo.company(org).batch(
            [BatchOperation.create("Invoice", item.prepared.body) for item in chunk],
            request_id_prefix=content_request_prefix(request_ids),
        )
        for item, result in zip(chunk, results, strict=True):
            outcome: Written | Conflict | None
            if result.entity is not None and result.error is None:
                outcome = Written(result.entity, "created")
            elif isinstance(result.error, QboDuplicateDocNumberError):
                outcome = await self._lookup(org, item)
                if outcome is None:
                    tally.temporary.append(classify(TransientError("number taken but not found yet", code="6140")))
                    continue
            else:
                error = classify(result.error or TransientError("QuickBooks returned no invoice for a batch item"))
                if error.error_class != "permanent":
                    tally.temporary.append(error)
                    continue
                await self._fail(ctx, event, item, error)
                tally.failed += 1
                continue
            await self._settle(ctx, event, item, outcome, settings, tally)

    async def _settle(
        self,
        ctx: HandlerContext,
        event: SyncAllUnsentInvoicesRequested,
        item: _Ready,
        outcome: Written | Conflict,
        settings: OrganizationSettings,
        tally: _Tally,
    ) -> None:
        org = event.organization_id
        if isinstance(outcome, Conflict):
            error = await self.invoices.conflict(
                ctx.db,
                event,
                item.prepared.invoice,
                outcome.holder,
                entity_version=item.child.entity_version,
                source_event_id=item.child.event_id,
            )
            await self._child(ctx, event, item.child, item.started, error=classify(error))
            tally.failed += 1
            return
        synced = await self.invoices.finish(
            ctx.db, org, item.prepared, outcome, event_id=item.child.event_id, settings=settings
        )
        await record_child(
            ctx,
            self.deps.publisher,
            event,
            item.child,
            service=self.deps.service,
            started=item.started,
            action=synced.action,
            qbo_id=synced.qbo_id,
            warnings=synced.warnings,
            needs_review=synced.needs_review,
        )
        tally.synced += 1

    async def _fail(
        self, ctx: HandlerContext, event: SyncAllUnsentInvoicesRequested, item: _Ready, error: Classified
    ) -> None:
        async with ctx.db.transaction() as conn:
            await store.mark_failed(
                conn,
                event.organization_id,
                "invoice",
                item.document.document_id,
                error=error.message,
                now=datetime.now(UTC),
            )
        await self._child(ctx, event, item.child, item.started, error=error)

    async def _child(
        self,
        ctx: HandlerContext,
        event: SyncAllUnsentInvoicesRequested,
        child: Child,
        started: datetime,
        *,
        error: Classified,
    ) -> None:
        await record_child(
            ctx, self.deps.publisher, event, child, service=self.deps.service, started=started, error=error
        )
