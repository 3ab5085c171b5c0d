"""qbsync invoice-sync: Invoices, voids, credit memos and portal payments -> QuickBooks, exactly once."""
