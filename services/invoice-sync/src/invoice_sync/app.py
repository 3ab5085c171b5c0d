"""Composition root of invoice-sync: settings -> QBO client (tokens from token-manager) -> use cases -> handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from invoice_sync import handlers, store
from invoice_sync.batcher import MicroBatcher
from invoice_sync.bulk import BulkInvoiceSync
from invoice_sync.config import InvoiceSyncSettings
from invoice_sync.credits import CreditMemoSync
from invoice_sync.deps import Deps
from invoice_sync.invoices import InvoiceSync
from invoice_sync.payments import PaymentSync
from invoice_sync.references import References
from invoice_sync.voids import VoidSync
from qbsync.persistence import RUNTIME_BRANCH
from qbsync.qbo import QboClient, TokenProvider
from qbsync.runtime import Publisher
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts
from qbsync.settings import RuntimeSettings
from qbsync.tokens import TokenManagerClient

__all__ = ["build", "build_use_cases", "definition"]


def build_use_cases(
    qbo: QboClient,
    publisher: Publisher,
    *,
    service: str,
    runtime: RuntimeSettings,
    settings: InvoiceSyncSettings,
) -> tuple[handlers.UseCases, MicroBatcher | None]:
    """The use cases over one QBO client; the batcher (if on) must be closed before the client."""
    batcher = (
        MicroBatcher(
            qbo,
            window_seconds=settings.batch_window_ms / 1000,
            max_items=settings.batch_max_items,
            concurrency=settings.batch_concurrency,
            burst_share=settings.batch_burst_share,
        )
        if settings.batching_enabled
        else None
    )
    deps = Deps(qbo, publisher, service, runtime, settings, References(qbo, settings), batcher)
    voids = VoidSync(deps)
    invoices = InvoiceSync(deps, voids)
    cases = handlers.UseCases(invoices, voids, CreditMemoSync(deps), PaymentSync(deps), BulkInvoiceSync(deps, invoices))
    return cases, batcher


async def build(
    ctx: ServiceContext,
    token_provider: TokenProvider | None = None,
    settings: InvoiceSyncSettings | None = None,
) -> ServiceParts:
    tokens = token_provider or TokenManagerClient(ctx.settings.token_manager)
    qbo = QboClient(ctx.settings.qbo, tokens)
    cases, batcher = build_use_cases(
        qbo,
        ctx.publisher,
        service=ctx.name,
        runtime=ctx.settings.runtime,
        settings=settings or ctx.settings.invoice_sync,
    )
    handlers.register(ctx.registry, cases)
    closers: list[Callable[[], Awaitable[None]]] = [qbo.aclose]  # closed in reverse: the batcher first
    if batcher is not None:
        closers.append(batcher.aclose)
    if isinstance(tokens, TokenManagerClient):
        closers.insert(0, tokens.aclose)
    return ServiceParts(resources=cases, closers=closers)


definition = ServiceDefinition(
    name="invoice-sync",
    build=build,
    migration_branches=(RUNTIME_BRANCH, "invoice_sync"),
    migration_locations=(store.MIGRATIONS,),
    # A company's records share a partition, so the records in flight per partition bound one company's speed
    # (Little's law): each spends about a second between arriving and its outcome (prepared, queued for the next
    # micro-batch, ~0.25-1.2 s at QuickBooks). 64 held the per-company bulk at ~50 % of QuickBooks' ceiling; 128
    # reaches it (docs/performance.md, round 3). The buffer ahead of them holds decoded invoices (~12 KB each): two
    # in-flight windows keep the workers fed and bound memory under a backlog (the runtime's default of 1,000 per
    # partition took the service to ~230 MB; 256: ~160 MB).
    runtime_defaults={"max_in_flight_per_partition": 128, "max_buffered_per_partition": 256},
)
