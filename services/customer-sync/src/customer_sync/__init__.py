"""qbsync customer-sync: Batchly customers -> QuickBooks customers (create, update, link, never duplicate)."""
