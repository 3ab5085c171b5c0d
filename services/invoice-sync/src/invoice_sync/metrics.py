"""invoice-sync's metrics (prefix ``qbsync_``, bounded labels: never an organization or invoice id)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["BATCH_ITEMS", "MISMATCHES", "NUMBER_CONFLICTS", "NUMBER_GAPS"]

MISMATCHES = Counter(
    "qbsync_invoice_mismatches_total",
    "Post-sync verification found QuickBooks differing from Batchly (the document is flagged for review), by kind: "
    "id, doc_number, total, tax, customer, line_count, line.",
    ["kind"],
)
NUMBER_GAPS = Counter(
    "qbsync_invoice_number_gaps_total",
    "Invoices whose predecessor number was not seen, by the organization's gap policy (warn, block).",
    ["policy"],
)
NUMBER_CONFLICTS = Counter(
    "qbsync_invoice_number_conflicts_total",
    "Invoice numbers QuickBooks already holds for another invoice (6140 not ours), needing a counter reset.",
)
BATCH_ITEMS = Histogram(
    "qbsync_invoice_batch_items",
    "Items per QuickBooks /batch request sent by invoice-sync, by path (live micro-batch, bulk).",
    ["path"],
    buckets=(1, 2, 4, 8, 12, 16, 20, 25, 30),
)
