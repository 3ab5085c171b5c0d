"""Row factories for the query-engine tests: rows shaped exactly as the emulator stores QBO entities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Row = dict[str, Any]


def customer_row(customer_id: int, display_name: str, **fields: Any) -> Row:
    """A stored Customer: QBO JSON with string Id/SyncToken, MetaData and Active."""
    row: Row = {
        "Id": str(customer_id),
        "SyncToken": "0",
        "DisplayName": display_name,
        "Active": True,
        "Balance": 0,
        "MetaData": {
            "CreateTime": "2024-01-01T09:00:00-08:00",
            "LastUpdatedTime": "2024-01-01T09:00:00-08:00",
        },
    }
    row.update(fields)
    return row


def invoice_row(invoice_id: int, customer_id: int, **fields: Any) -> Row:
    row: Row = {
        "Id": str(invoice_id),
        "SyncToken": "0",
        "DocNumber": f"INV-{invoice_id}",
        "TxnDate": "2024-01-15",
        "CustomerRef": {"value": str(customer_id), "name": f"Customer {customer_id}"},
        "TotalAmt": 100.0,
        "Balance": 100.0,
        "MetaData": {
            "CreateTime": "2024-01-15T10:00:00-08:00",
            "LastUpdatedTime": "2024-01-15T10:00:00-08:00",
        },
    }
    row.update(fields)
    return row


@pytest.fixture
def make_customer() -> Callable[..., Row]:
    return customer_row


@pytest.fixture
def make_invoice() -> Callable[..., Row]:
    return invoice_row
