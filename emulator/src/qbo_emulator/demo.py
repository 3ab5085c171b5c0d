"""The demo data set: a realistic customer base and a little history, written through the normal write path.

Customers with apostrophes, accents, CJK characters and one inactive; items of every type (service, non-inventory,
inventory, a category with a sub-item, a group, one inactive); a vendor and an employee; invoices that are paid,
partly paid and open; a credit memo. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from qbo_emulator.accounting import Accounting
from qbo_emulator.config import FidelityConfig
from qbo_emulator.context import WriteContext
from qbo_emulator.entities import BY_NAME
from qbo_emulator.seed import id_by_name
from qbo_emulator.store import Company

__all__ = ["seed_demo"]

Row = dict[str, Any]


_CUSTOMERS: Final = (
    ("Amy's Bird Sanctuary", "Amy", "Lauterbach", "CA", "Net 30"),
    ("Bill's Windsurf Shop", "Bill", "Lucchini", "WA", "Net 15"),
    ("Cool Cars", "Grace", "Pariente", "TX", None),
    ("Diego Rodríguez", "Diego", "Rodríguez", "FL", "Due on receipt"),
    ("Dukes Basketball Camp", "Peter", "Dukes", "IL", "Net 30"),
    ("Geeta Kalapatapu", "Geeta", "Kalapatapu", "NY", None),
    ("Jeff's Jalopies", "Jeff", "Chin", "OR", "Net 30"),
    ("Kookies by Kathy", "Kathy", "Kuplis", "MA", "Net 15"),
    ("Mark Cho", "Mark", "Cho", "CA", None),
    ("Müller & Söhne GmbH", "Jürgen", "Müller", "NY", "Net 60"),
    ("O'Brien Landscaping", "Siobhan", "O'Brien", "CA", "Net 30"),
    ("Pye's Cakes", "Karen", "Pye", "WA", None),
    ("Rago Travel Agency", "Nick", "Rago", "TX", "Net 30"),
    ("Sonnenschein Family Store", "Russ", "Sonnenschein", "IL", None),
    ("Sushi by Katsuyuki", "Katsuyuki", "Yanagawa", "CA", "Due on receipt"),
    ("北京贸易有限公司", "伟", "王", "NY", "Net 30"),
)


# (name, type, unit price, taxable, income account, inventory (qty, cost) or None)
_ITEMS: Final = (
    ("Design", "Service", 75, False, "Services", None),
    ("Rock Fountain", "Inventory", 275, True, "Sales of Product Income", (20, 125)),
    ("Sprinkler Heads", "Inventory", 2.75, True, "Sales of Product Income", (500, 0.75)),
    ("Pest Control", "NonInventory", 0.25, True, "Sales of Product Income", None),
    ("Soil", "NonInventory", 10, True, "Sales of Product Income", None),
)


def _item_body(company: Company, spec: tuple[Any, ...]) -> Row:
    name, kind, price, taxable, income, stock = spec
    body: Row = {"Name": name, "Type": kind, "UnitPrice": price, "Taxable": taxable}
    body["IncomeAccountRef"] = {"value": id_by_name(company, "Account", income)}
    if stock is not None:
        body.update(QtyOnHand=stock[0], PurchaseCost=stock[1], InvStartDate="2024-01-01")
        body["AssetAccountRef"] = {"value": id_by_name(company, "Account", "Inventory Asset")}
        body["ExpenseAccountRef"] = {"value": id_by_name(company, "Account", "Cost of Goods Sold")}
    return body


def _demo_items(acc: Accounting, company: Company) -> list[Row]:
    """Sellable items of every type; also a category with a sub-item, a group and an inactive item."""
    item = BY_NAME["Item"]
    made = [acc.create(item, _item_body(company, spec)) for spec in _ITEMS]
    category = acc.create(item, {"Name": "Landscaping", "Type": "Category"})
    gardening = _item_body(company, ("Gardening", "Service", 35.5, False, "Services", None))
    made.append(acc.create(item, {**gardening, "ParentRef": {"value": category["Id"]}}))
    group_lines = [{"ItemRef": {"value": made[1]["Id"]}, "Qty": 1}, {"ItemRef": {"value": made[2]["Id"]}, "Qty": 4}]
    acc.create(item, {"Name": "Fountain Bundle", "Type": "Group", "ItemGroupDetail": {"ItemGroupLine": group_lines}})
    old = acc.create(
        item, _item_body(company, ("Discontinued Gnome", "NonInventory", 12, True, "Sales of Product Income", None))
    )
    acc.update(item, {"Id": old["Id"], "SyncToken": old["SyncToken"], "sparse": True, "Active": False})
    return made


def seed_demo(company: Company, now: datetime, fidelity: FidelityConfig, seed: int = 0) -> None:
    """Customers (apostrophes, unicode, one inactive), items of every type, a vendor, an employee, and a
    history of invoices, partial and full payments and a credit memo."""
    if company.name_holder(company.name_key("Customer", _CUSTOMERS[0][0])) is not None:
        raise ValueError("the company already has the demo data")
    rng = random.Random(seed)
    ctx = WriteContext(company, fidelity, now)
    acc = Accounting(ctx)
    items = _demo_items(acc, company)
    customers = []
    for display, given, family, state, term in _CUSTOMERS:
        body: Row = {
            "DisplayName": display,
            "GivenName": given,
            "FamilyName": family,
            "CompanyName": display,
            "PrimaryEmailAddr": {"Address": f"{given.lower()}@example.com" if given.isascii() else "info@example.cn"},
            "BillAddr": {
                "Line1": f"{rng.randint(10, 9999)} Main St",
                "City": "Springfield",
                "CountrySubDivisionCode": state,
                "PostalCode": "94000",
            },
        }
        if term:
            body["SalesTermRef"] = {"value": id_by_name(company, "Term", term)}
        customers.append(acc.create(BY_NAME["Customer"], body))
    gone = acc.create(BY_NAME["Customer"], {"DisplayName": "Former Client LLC", "CompanyName": "Former Client LLC"})
    acc.update(BY_NAME["Customer"], {"Id": gone["Id"], "SyncToken": gone["SyncToken"], "sparse": True, "Active": False})
    acc.create(BY_NAME["Vendor"], {"DisplayName": "Acme Supplies", "CompanyName": "Acme Supplies"})
    acc.create(BY_NAME["Employee"], {"GivenName": "Emily", "FamilyName": "Platt", "DisplayName": "Emily Platt"})
    _demo_history(acc, rng, customers, items, now)


def _sale_line(item: Row, qty: int) -> Row:
    price = Decimal(str(item["UnitPrice"]))
    detail = {"ItemRef": {"value": item["Id"]}, "Qty": qty, "UnitPrice": item["UnitPrice"]}
    return {"DetailType": "SalesItemLineDetail", "Amount": float(price * qty), "SalesItemLineDetail": detail}


def _pay(acc: Accounting, customer: Row, invoice: Row, amount: float) -> None:
    link = [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    body = {
        "CustomerRef": {"value": customer["Id"]},
        "TotalAmt": amount,
        "Line": [{"Amount": amount, "LinkedTxn": link}],
    }
    acc.create(BY_NAME["Payment"], body)


def _demo_history(acc: Accounting, rng: random.Random, customers: list[Row], items: list[Row], now: datetime) -> None:
    """One invoice per customer over the last weeks: a third paid, a third half paid, a third open."""
    start = now.date() - timedelta(days=20)
    for number, customer in enumerate(customers):
        lines = [_sale_line(item, rng.randint(1, 5)) for item in rng.sample(items, k=rng.randint(1, 3))]
        txn_date = (start + timedelta(days=number)).isoformat()
        invoice = acc.create(
            BY_NAME["Invoice"], {"CustomerRef": {"value": customer["Id"]}, "Line": lines, "TxnDate": txn_date}
        )
        total = float(invoice["TotalAmt"])
        if number % 3 == 0 and total > 0:
            _pay(acc, customer, invoice, total)
        elif number % 3 == 1 and total > 1:
            _pay(acc, customer, invoice, round(total / 2, 2))
    credit = {"CustomerRef": {"value": customers[0]["Id"]}, "Line": [_sale_line(items[0], 1)]}
    acc.create(BY_NAME["CreditMemo"], credit)
