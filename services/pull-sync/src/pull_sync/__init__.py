"""qbsync pull-sync: Items, payment status and tax rates from QuickBooks -> Batchly (scheduled, on demand, webhooks)."""
