"""Comparison harnesses, never shipped: the seed's original design and a sequential ``python-quickbooks`` loop.

Both write the very invoices qbsync writes (``qbsync.domain.invoices.invoice_body``) to a company of the same
emulator, under the same latency and limits, in the same run — so the ratios in the report compare designs, not
machines or moments.
"""
