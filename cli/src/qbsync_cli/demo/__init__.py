"""``qbsync demo``: the whole platform, a Batchly simulator playing the seed's workflows, and a live dashboard.

* the embedded stack from ``qbsync up``'s launcher (broker, emulator, the four services as processes);
* a QuickBooks company per organization in the emulator, connected through token-manager's real connect flow;
* each simulated business day: new customers (New Customer Workflow), then orders and bulk invoices (Daily Order &
  Invoice Workflow), then the emulator's accountant records payments and "Sync Payments Now" brings them back;
* a live terminal dashboard of each organization's syncs and the services' ``/metrics``.

``--once`` plays a bounded scenario (one day), prints a summary and exits 1 if any event did not end as expected.
"""

from __future__ import annotations

from qbsync_cli.demo.command import demo

__all__ = ["demo"]
