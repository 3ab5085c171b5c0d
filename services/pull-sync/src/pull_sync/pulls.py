"""pull-sync's use cases behind every trigger: the schedule, "Sync … Now" commands, webhooks.

All of them end up here, so a scheduled run, a manual one and a webhook's targeted one are the same code with the
same guarantees (one at a time per organization and kind, published only when changed, watermark after publish).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from pull_sync import metrics
from pull_sync.deps import Deps
from pull_sync.feed import Mode, Summary
from pull_sync.items import ItemPull
from pull_sync.payments import PaymentPull
from pull_sync.tax import TaxPull
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import EntityRef, PullKind, SyncWarning
from qbsync.runtime import Completed

__all__ = ["PAYMENT_ENTITIES", "Pulls", "outcome"]

#: Webhook entities that can change an invoice's payment status.
PAYMENT_ENTITIES = frozenset({"Invoice", "Payment"})


class Pulls:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.items = ItemPull(deps)
        self.payments = PaymentPull(deps)
        self.tax = TaxPull(deps)

    async def run(self, org: UUID, kind: PullKind, *, mode: Mode, cause: AnyEnvelope | None) -> list[Summary]:
        """A scheduled or manual pull of one kind ("reconcile": the items and payments change feeds)."""
        return _counted(await self._run(org, kind, mode=mode, cause=cause))

    async def _run(self, org: UUID, kind: PullKind, *, mode: Mode, cause: AnyEnvelope | None) -> list[Summary]:
        if kind == "items":
            return [await self.items.run(org, mode=mode, cause=cause)]
        if kind == "payments":
            return [await self.payments.run(org, mode=mode, cause=cause)]
        if kind == "tax":
            return [await self.tax.run(org, cause=cause)]
        if kind == "reconcile":
            return [
                await self.payments.run(org, mode="incremental", cause=cause),
                await self.items.run(org, mode="incremental", cause=cause),
            ]
        raise ValueError(f"{kind} is not a pull")

    async def targeted(self, org: UUID, targets: Sequence[EntityRef], *, cause: AnyEnvelope | None) -> list[Summary]:
        """Read only the named objects (a webhook's); entities pull-sync does not sync are left alone."""
        summaries: list[Summary] = []
        payment_refs = [t for t in targets if t.entity in PAYMENT_ENTITIES]
        item_ids = [t.qbo_id for t in targets if t.entity == "Item"]
        if payment_refs:
            summaries.append(await self.payments.run(org, mode="targeted", cause=cause, targets=payment_refs))
        if item_ids:
            summaries.append(await self.items.run(org, mode="targeted", cause=cause, ids=item_ids))
        return _counted(summaries)


def _counted(summaries: list[Summary]) -> list[Summary]:
    for summary in summaries:
        for change, count in summary.changes.items():
            metrics.CHANGES.labels(summary.kind, change).inc(count)
    return summaries


def outcome(summaries: Sequence[Summary], *, note: str | None = None) -> Completed:
    """The ledger's record of a pull: "applied" when something was published, each kind's summary as a line."""
    warnings = [SyncWarning(code="pull_summary", message=s.text()) for s in summaries]
    if note:
        warnings.append(SyncWarning(code="pull_note", message=note))
    published = sum(s.published for s in summaries)
    return Completed(action="applied" if published else "unchanged", warnings=warnings)
