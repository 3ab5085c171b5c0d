"""A per-company micro-batcher: concurrent invoice creates of one company leave as one ``/batch`` request.

The runtime runs up to ``max_in_flight_per_partition`` records of a partition at once, and a company's records share
a partition (the key is the organization), so a burst of invoices arrives here together. Creates queue per company;
a batch leaves when it holds ``max_items``, or when its oldest create has waited ``window`` — but never more than
``concurrency`` batches of one company are on their way at once. While those wait (for QuickBooks, or for a slot in
the company's request budget) the queue keeps filling, so under load batches leave full: fewer requests for the same
invoices, like Nagle's algorithm. A batch takes its items only once the company's budget would admit it
(:meth:`QboCompany.wait_for_budget`): when the budget is the constraint, the batch that waited for it leaves with
everything that arrived meanwhile, not with what was queued when it was due. Each caller gets back its own item's
outcome (the created invoice, or the error its item failed with), so every record still has its own outcome.

Pacing: QuickBooks' batch budget is a moving window (120 a minute), so a bulk that sends partial batches as fast as
they are ready spends the whole minute's budget in its first seconds and then stalls with the rest of its invoices
queued. Partial batches therefore go out at once only while the company's batch budget is nearly unspent
(``burst_share``, 10 %: a short burst such as the seed's 100-invoice test is never held back); beyond that a partial
batch waits until it is full or the sustained pace allows it (one batch per ``window / limit`` seconds since the
previous one). A full batch never waits for the pace.

Exactly once: the batch's ``requestid`` is derived from its content (the items' own request ids, in order), so
sending the same batch again replays QuickBooks' answer; a different composition is a new request, which is why a
caller whose earlier attempt may have written looks its invoice up first (see :mod:`invoice_sync.writer`). A caller
cancelled while its item is still queued takes the item out (it never left); once sent, the write may happen, and
the record's next attempt finds the invoice by its number.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from invoice_sync import metrics
from qbsync.qbo import BatchOperation, QboClient
from qbsync.qbo.errors import QboError

__all__ = ["MicroBatcher", "content_request_prefix"]


@dataclass
class _Item:
    operation: BatchOperation
    request_id: str
    future: asyncio.Future[dict[str, Any]]
    queued_at: float


@dataclass
class _Company:
    queue: list[_Item] = field(default_factory=list)
    sending: int = 0  # batches started (composing or on their way)
    composing: int = 0  # of those, batches still waiting for the budget before they take their items
    timer: asyncio.TimerHandle | None = None
    grown: asyncio.Event = field(default_factory=asyncio.Event)  # set when a create joins the queue
    last_sent: float = float("-inf")  # loop time the company's last batch took its items


class MicroBatcher:
    """Create entities of one company in shared ``/batch`` requests. One per process."""

    def __init__(
        self,
        qbo: QboClient,
        *,
        window_seconds: float,
        max_items: int = 30,
        concurrency: int = 1,
        burst_share: float = 1.0,
    ) -> None:
        if not 1 <= max_items <= 30:
            raise ValueError("a QuickBooks batch holds 1 to 30 items")
        if concurrency < 1:
            raise ValueError("at least one batch must be allowed on its way")
        if not 0.0 <= burst_share <= 1.0:
            raise ValueError("burst_share is a share of the budget, 0 to 1")
        self.qbo = qbo
        self.window = window_seconds
        self.max_items = max_items
        self.concurrency = concurrency
        self.burst_share = burst_share
        self._companies: dict[UUID, _Company] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def create(
        self, organization_id: UUID, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """Create one entity through the company's next batch; returns the entity or raises its item's error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        company = self._companies.setdefault(organization_id, _Company())
        company.queue.append(_Item(BatchOperation.create(entity, body), request_id, future, loop.time()))
        company.grown.set()
        self._pump(organization_id)
        return await future

    def _pump(self, organization_id: UUID) -> None:
        """Send every batch that may leave now; arm the timer for the oldest create still waiting."""
        company = self._companies[organization_id]
        loop = asyncio.get_running_loop()
        company.queue = [item for item in company.queue if not item.future.done()]  # callers that gave up
        while len(company.queue) > company.composing * self.max_items and company.sending < self.concurrency:
            waiting = len(company.queue) - company.composing * self.max_items
            due = company.queue[company.composing * self.max_items].queued_at + self.window <= loop.time()
            if waiting < self.max_items and not due and not self._closing:
                break
            company.sending += 1
            company.composing += 1
            task = asyncio.create_task(self._run(organization_id), name="invoice micro-batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if company.timer is not None:
            company.timer.cancel()
            company.timer = None
        if len(company.queue) > company.composing * self.max_items and company.sending < self.concurrency:
            oldest = company.queue[company.composing * self.max_items]
            company.timer = loop.call_later(
                max(0.0, oldest.queued_at + self.window - loop.time()), self._pump, organization_id
            )

    async def _run(self, organization_id: UUID) -> None:
        company = self._companies[organization_id]
        composing = True
        try:
            await self._wait_for_budget(organization_id)
            await self._fill_or_pace(organization_id, company)
            company.composing -= 1
            composing = False
            company.queue = [item for item in company.queue if not item.future.done()]
            items, company.queue = company.queue[: self.max_items], company.queue[self.max_items :]
            if items:
                company.last_sent = asyncio.get_running_loop().time()
            if items:
                await self._send(organization_id, items)
        finally:
            company.composing -= int(composing)
            company.sending -= 1
            self._pump(organization_id)

    async def _wait_for_budget(self, organization_id: UUID) -> None:
        """Hold the batch's items back until the company's budget would admit it (errors are the batch's to meet)."""
        if self._closing:
            return
        try:
            await self.qbo.company(organization_id).wait_for_budget(batch=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # the batch request itself meets the same trouble and reports it per item
            return

    async def _fill_or_pace(self, organization_id: UUID, company: _Company) -> None:
        """A partial batch, once the burst share of the budget is spent: wait until it is full or the pace allows."""
        if self.burst_share >= 1.0:
            return
        qbo = self.qbo.company(organization_id)
        loop = asyncio.get_running_loop()
        while not self._closing:
            if sum(1 for item in company.queue if not item.future.done()) >= self.max_items:
                return
            due = company.last_sent + qbo.batch_pace_s - loop.time()
            if due <= 0:
                return
            try:
                headroom = await qbo.budget_headroom(batch=True)
            except asyncio.CancelledError:
                raise
            except Exception:  # the batch request itself meets the same trouble and reports it per item
                return
            if headroom > 1.0 - self.burst_share:
                return
            company.grown.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(company.grown.wait(), due)

    async def _send(self, organization_id: UUID, items: list[_Item]) -> None:
        metrics.BATCH_ITEMS.labels("live").observe(len(items))
        prefix = content_request_prefix([item.request_id for item in items])
        try:
            results = await self.qbo.company(organization_id).batch(
                [item.operation for item in items], request_id_prefix=prefix
            )
        except BaseException as exc:  # auth lost, cancelled at shutdown, a bug: every waiter learns it
            error = exc if isinstance(exc, Exception) else QboShutdownError("the batch was cancelled")
            for item in items:
                _settle(item.future, error=error)
            if not isinstance(exc, Exception):
                raise
            return
        for item, result in zip(items, results, strict=True):
            if result.error is not None:
                _settle(item.future, error=result.error)
            elif result.entity is None:
                _settle(item.future, error=QboError("QBO's batch result holds no entity"))
            else:
                _settle(item.future, value=result.entity)

    async def aclose(self) -> None:
        """Send what is queued and wait for batches on their way (bounded by the client's own timeouts)."""
        self._closing = True
        for company in self._companies.values():
            company.grown.set()  # a batch waiting to fill leaves now
        while self._tasks or any(c.queue for c in self._companies.values()):
            for organization_id in list(self._companies):
                self._pump(organization_id)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await asyncio.sleep(0)


class QboShutdownError(QboError):
    """The batch was cancelled while the service stopped; the record comes again (and looks before it writes)."""

    retryable = True


def _settle(
    future: asyncio.Future[dict[str, Any]], *, value: dict[str, Any] | None = None, error: Exception | None = None
) -> None:
    if future.done():  # the caller gave up (cancelled); its record will come again
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert value is not None
        future.set_result(value)


def content_request_prefix(request_ids: list[str]) -> str:
    """A stable id of the batch's content: the same items in the same order give the same QuickBooks requestid."""
    digest = hashlib.sha256("\n".join(request_ids).encode()).hexdigest()
    return f"mb-{digest[:32]}"
