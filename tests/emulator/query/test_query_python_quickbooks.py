"""The query strings python-quickbooks 0.9.12 really builds parse, run, and come back in a shape it reads.

A small stand-in for ``quickbooks.QuickBooks`` answers ``query()`` with this engine, so the library's own
query builders (``all``, ``filter``, ``where``, ``choose``, ``count``) and its response parsing are exercised
unchanged, without HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

from qbo_emulator.query import QueryError, execute, parse_query

Row = dict[str, Any]


class EngineBackedQuickBooks:
    """Implements the one method python-quickbooks' list mixins call: ``query(select) -> response JSON``."""

    def __init__(self, tables: dict[str, list[Row]]) -> None:
        self.tables = tables
        self.sent: list[str] = []

    def query(self, select: str) -> dict[str, Any]:
        self.sent.append(select)
        query = parse_query(select)
        return {"QueryResponse": execute(query, self.tables.get(query.entity, [])).to_query_response()}


@pytest.fixture
def qb(make_customer: Callable[..., Row], make_invoice: Callable[..., Row]) -> EngineBackedQuickBooks:
    return EngineBackedQuickBooks(
        {
            "Customer": [
                make_customer(1, "O'Brien"),
                make_customer(2, "Smith & Sons"),
                make_customer(3, "Gone Ltd", Active=False),
                make_customer(4, "C:\\share"),
            ],
            "Invoice": [make_invoice(i, 1, TxnDate=f"2024-01-{i:02d}", Balance=i % 2) for i in range(1, 8)],
            "Item": [
                {"Id": "1", "SyncToken": "0", "Name": "Widget", "Sku": "W-1", "Type": "Service", "Active": True},
                {"Id": "2", "SyncToken": "0", "Name": "Gadget", "Type": "NonInventory", "Active": True},
            ],
        }
    )


def test_all_pages_with_maxresults(qb: EngineBackedQuickBooks) -> None:
    customers = Customer.all(qb=qb)

    assert qb.sent == ["SELECT * FROM Customer MAXRESULTS 100"]
    assert [c.DisplayName for c in customers] == ["O'Brien", "Smith & Sons", "C:\\share"]


def test_all_with_order_by_uses_order_by_with_a_space(qb: EngineBackedQuickBooks) -> None:
    items = Item.all(order_by="Name DESC", start_position=1, max_results=1000, qb=qb)

    assert qb.sent == ["SELECT *, Sku FROM Item ORDER BY Name DESC STARTPOSITION 1 MAXRESULTS 1000"]
    assert [(i.Name, i.Sku) for i in items] == [("Widget", "W-1"), ("Gadget", None)]


def test_filter_escapes_apostrophes_and_formats_python_booleans(qb: EngineBackedQuickBooks) -> None:
    customers = Customer.filter(DisplayName="O'Brien", Active=True, qb=qb)

    assert qb.sent == ["SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien' AND Active = True"]
    assert [c.Id for c in customers] == ["1"]


def test_filter_with_an_unescaped_backslash_still_finds_the_name(qb: EngineBackedQuickBooks) -> None:
    customers = Customer.filter(DisplayName="C:\\share", qb=qb)

    assert [c.Id for c in customers] == ["4"]


def test_where_with_orderby_and_paging(qb: EngineBackedQuickBooks) -> None:
    invoices = Invoice.where("Balance > '0'", order_by="TxnDate DESC", start_position=2, max_results=2, qb=qb)

    assert qb.sent == ["SELECT * FROM Invoice WHERE Balance > '0' ORDERBY TxnDate DESC STARTPOSITION 2 MAXRESULTS 2"]
    assert [i.Id for i in invoices] == ["5", "3"]


def test_choose_builds_an_in_list(qb: EngineBackedQuickBooks) -> None:
    customers = Customer.choose(["O'Brien", "Smith & Sons", "nobody"], field="DisplayName", qb=qb)

    assert [c.Id for c in customers] == ["1", "2"]


def test_count_reads_total_count(qb: EngineBackedQuickBooks) -> None:
    assert Customer.count("Active IN (true, false)", qb=qb) == 4
    assert Invoice.count(qb=qb) == 7
    assert qb.sent[-1] == "SELECT COUNT(*) FROM Invoice "


def test_an_empty_result_reads_as_an_empty_list(qb: EngineBackedQuickBooks) -> None:
    assert Customer.filter(DisplayName="nobody", qb=qb) == []


def test_a_library_query_on_an_unfilterable_field_surfaces_qbos_error(qb: EngineBackedQuickBooks) -> None:
    with pytest.raises(QueryError) as caught:
        Customer.filter(Notes="x", qb=qb)

    assert caught.value.detail == "QueryValidationError: property 'Notes' is not queryable"
