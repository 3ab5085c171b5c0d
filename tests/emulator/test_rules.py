"""The business rules that break naive clients (issue 3): names, lengths, DocNumbers, amounts, references,
server-computed totals, payments, credit memos and automated sales tax."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from tests.emulator.helpers import Api, fault_of, line
from tests.fixtures.emulator import EmulatorHandle


def tax_line(amount: float) -> dict[str, Any]:
    return line(amount, TaxCodeRef={"value": "TAX"})


async def customer(api: Api, name: str = "Buyer", state: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"DisplayName": name, **extra}
    if state:
        body["ShipAddr"] = {"Line1": "1 Main St", "City": "Town", "CountrySubDivisionCode": state}
    return await api.create("Customer", body)


async def company_api(emulator: EmulatorHandle, client: httpx.AsyncClient, **options: Any) -> Api:
    realm = emulator.create_company(**options)
    return Api(client, realm, emulator.issue_tokens(realm)["access_token"])


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize("other", ["Vendor", "Employee", "Customer"])
async def test_display_name_is_unique_across_customers_vendors_and_employees(api: Api, other: str) -> None:
    await api.create("Customer", {"DisplayName": "Shared Name"})
    response = await api.post(other.lower(), {"DisplayName": "Shared Name"})
    assert response.status_code == 400
    error = fault_of(response)
    assert (error["code"], error["Message"]) == ("6240", "Duplicate Name Exists Error")
    assert "Another customer, vendor or employee is already using this name" in error["Detail"]


async def test_inactive_names_still_collide_and_case_is_ignored(api: Api) -> None:
    created = await api.create("Vendor", {"DisplayName": "Old Supplier"})
    await api.post("vendor", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert fault_of(await api.post("customer", {"DisplayName": "Old Supplier"}))["code"] == "6240"
    assert fault_of(await api.post("customer", {"DisplayName": "old supplier"}))["code"] == "6240"


async def test_renaming_to_a_taken_name_fails_but_keeping_your_own_name_works(api: Api) -> None:
    await api.create("Customer", {"DisplayName": "Taken"})
    mine = await api.create("Customer", {"DisplayName": "Mine"})
    clash = await api.post("customer", {"Id": mine["Id"], "SyncToken": "0", "sparse": True, "DisplayName": "Taken"})
    assert fault_of(clash)["code"] == "6240"
    same = await api.post("customer", {"Id": mine["Id"], "SyncToken": "0", "sparse": True, "DisplayName": "Mine"})
    assert same.status_code == 200


async def test_colon_is_not_allowed_in_display_names(api: Api) -> None:
    response = await api.post("customer", {"DisplayName": "Parent:Child"})
    assert response.status_code == 400
    assert fault_of(response)["element"] == "DisplayName"


async def test_display_name_is_derived_from_name_parts(api: Api) -> None:
    created = await api.create("Customer", {"Title": "Dr", "GivenName": "Ada", "FamilyName": "Lovelace"})
    assert created["DisplayName"] == "Dr Ada Lovelace"
    assert fault_of(await api.post("customer", {"Notes": "nameless"}))["code"] == "6080"


@pytest.mark.parametrize(
    "name",
    ["O'Brien & Sons", "Zoë Ñúñez — Café", "北京贸易有限公司", "Emoji 🎉 Ltd", "x" * 500, 'Quote " and back\\slash'],
)
async def test_hard_names_round_trip_and_query(api: Api, name: str) -> None:
    created = await api.create("Customer", {"DisplayName": name})
    assert created["DisplayName"] == name
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    found = await api.query(f"select * from Customer where DisplayName = '{escaped}'")
    assert [c["Id"] for c in found["Customer"]] == [created["Id"]]


async def test_string_length_limits_use_qbos_2050_text(api: Api) -> None:
    response = await api.post("customer", {"DisplayName": "y" * 501})
    error = fault_of(response)
    assert error["code"] == "2050"
    assert error["Detail"] == (
        "String length specified does not match the supported length. Min:0 Max:500 supported. Supplied length:501"
    )
    notes = fault_of(await api.post("customer", {"DisplayName": "ok", "Notes": "n" * 2001}))
    assert notes["Detail"].endswith("Max:2,000 supported. Supplied length:2,001")


async def test_bad_email_is_2210(api: Api) -> None:
    response = await api.post("customer", {"DisplayName": "Mail", "PrimaryEmailAddr": {"Address": "not-an-email"}})
    assert fault_of(response)["code"] == "2210"


# ---------------------------------------------------------------------------- DocNumbers


async def test_docnumber_must_be_unique_per_type_unless_allowed(api: Api) -> None:
    buyer = await customer(api)
    first = await api.create(
        "Invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "INV-1", "Line": [line(1)]}
    )
    dup = await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "INV-1", "Line": [line(1)]})
    error = fault_of(dup)
    assert error["code"] == "6140"
    assert f"DocNumber=INV-1 is assigned to TxnType=Invoice with TxnId={first['Id']}" in error["Detail"]
    allowed = await api.post(
        "invoice",
        {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "INV-1", "Line": [line(1)]},
        include="allowduplicatedocnum",
    )
    assert allowed.status_code == 200
    memo = await api.post(
        "creditmemo", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "INV-1", "Line": [line(1)]}
    )
    assert memo.status_code == 200  # uniqueness is per transaction type


async def test_company_without_duplicate_check_accepts_repeats(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    api = await company_api(emulator, emulator_client, duplicate_docnum_check=False)
    buyer = await customer(api)
    for _ in range(2):
        await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "SAME", "Line": [line(1)]})


async def test_docnumber_is_limited_to_21_characters(api: Api) -> None:
    buyer = await customer(api)
    ok = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "D" * 21, "Line": [line(1)]})
    assert ok["DocNumber"] == "D" * 21
    too_long = await api.post(
        "invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "D" * 22, "Line": [line(1)]}
    )
    error = fault_of(too_long)
    assert (error["code"], error["element"]) == ("2050", "DocNumber")
    assert error["Detail"].endswith("Max:21 supported. Supplied length:22")


async def test_without_custom_numbers_qbo_assigns_its_own(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    api = await company_api(emulator, emulator_client, custom_txn_numbers=False)
    buyer = await customer(api)
    numbers = [
        (await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "MINE", "Line": [line(1)]}))[
            "DocNumber"
        ]
        for _ in range(3)
    ]
    assert numbers == ["1001", "1002", "1003"]


async def test_omitted_docnumber_is_auto_assigned_and_skips_used_numbers(api: Api) -> None:
    buyer = await customer(api)
    await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "1001", "Line": [line(1)]})
    auto = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(1)]})
    assert auto["DocNumber"] == "1002"


# ---------------------------------------------------------------------------- lines, totals, references


async def test_amount_must_equal_qty_times_unit_price(api: Api) -> None:
    buyer = await customer(api)
    bad = await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(10, qty=3, price=3.33)]})
    error = fault_of(bad)
    assert error["code"] == "6070"
    assert error["Detail"] == "Amount is not equal to Qty * UnitPrice. Supplied value:10"
    good = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(9.99, qty=3, price=3.33)]})
    assert good["TotalAmt"] == 9.99


async def test_totals_balance_and_subtotal_line_are_computed_by_the_server(api: Api) -> None:
    buyer = await customer(api)
    invoice = await api.create(
        "Invoice",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "TotalAmt": 1_000_000,
            "Balance": 5,
            "Line": [
                line(20, qty=2, price=10),
                line(5.5),
                {
                    "DetailType": "DiscountLineDetail",
                    "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
                },
            ],
        },
    )
    assert invoice["TotalAmt"] == 22.95  # 25.50 - 2.55
    assert invoice["Balance"] == 22.95
    subtotal = invoice["Line"][-1]
    assert subtotal == {"Amount": 25.5, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    assert [ln["LineNum"] for ln in invoice["Line"][:-1]] == [1, 2, 3]
    assert (await api.read("Customer", buyer["Id"]))["Balance"] == 22.95


async def test_missing_references_are_2500_and_inactive_ones_610(api: Api) -> None:
    buyer = await customer(api)
    missing = await api.post("invoice", {"CustomerRef": {"value": "424242"}, "Line": [line(1)]})
    assert fault_of(missing)["code"] == "2500"
    bad_item = await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(1, item="9999")]})
    assert fault_of(bad_item)["code"] == "2500"
    item = await api.create(
        "Item", {"Name": "Retired", "Type": "Service", "IncomeAccountRef": {"value": "1"}, "UnitPrice": 4}
    )
    await api.post("item", {"Id": item["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    inactive = await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(4, item=item["Id"])]})
    assert inactive.status_code == 400
    assert fault_of(inactive)["code"] == "610"
    await api.post("customer", {"Id": buyer["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    gone = await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(1)]})
    assert fault_of(gone)["code"] == "610"


async def test_required_fields_are_2020(api: Api) -> None:
    buyer = await customer(api)
    assert fault_of(await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}}))["code"] == "2020"
    assert fault_of(await api.post("invoice", {"Line": [line(1)]}))["code"] == "2020"
    assert fault_of(await api.post("item", {"Name": "No account", "Type": "Service"}))["code"] == "2020"


async def test_a_250_line_invoice_round_trips(api: Api) -> None:
    buyer = await customer(api)
    lines = [line(round(n * 1.01, 2), qty=n, price=1.01) for n in range(1, 251)]
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": lines})
    assert len(invoice["Line"]) == 251
    expected = sum(Decimal(str(round(n * 1.01, 2))) for n in range(1, 251))
    assert Decimal(str(invoice["TotalAmt"])) == expected
    assert (await api.read("Invoice", invoice["Id"]))["Line"] == invoice["Line"]


# ---------------------------------------------------------------------------- payments and credits


async def test_partial_payments_reduce_the_balance_and_link_both_ways(api: Api) -> None:
    buyer = await customer(api)
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(100)]})
    payment = await api.create(
        "Payment",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "TotalAmt": 40,
            "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert payment["UnappliedAmt"] == 0
    assert payment["DepositToAccountRef"]["name"] == "Undeposited Funds"
    after = await api.read("Invoice", invoice["Id"])
    assert after["Balance"] == 60
    assert after["SyncToken"] == "1"  # the payment changed the invoice
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert (await api.read("Customer", buyer["Id"]))["Balance"] == 60
    stale = await api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"})
    assert fault_of(stale)["code"] == "5010"


async def test_over_application_is_refused(api: Api) -> None:
    buyer = await customer(api)
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(10)]})
    link = [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    too_much = await api.post(
        "payment", {"CustomerRef": {"value": buyer["Id"]}, "TotalAmt": 20, "Line": [{"Amount": 20, "LinkedTxn": link}]}
    )
    assert fault_of(too_much)["code"] == "6000"
    short = await api.post(
        "payment", {"CustomerRef": {"value": buyer["Id"]}, "TotalAmt": 5, "Line": [{"Amount": 10, "LinkedTxn": link}]}
    )
    assert fault_of(short)["code"] == "6000"


async def test_payment_for_another_customers_invoice_cannot_be_linked(api: Api) -> None:
    alice, bob = await customer(api, "Alice"), await customer(api, "Bob")
    invoice = await api.create("Invoice", {"CustomerRef": {"value": alice["Id"]}, "Line": [line(10)]})
    response = await api.post(
        "payment",
        {
            "CustomerRef": {"value": bob["Id"]},
            "TotalAmt": 10,
            "Line": [{"Amount": 10, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert fault_of(response)["code"] == "620"


async def test_unapplied_payment_and_credit_memo_application(api: Api) -> None:
    buyer = await customer(api)
    credit = await api.create("CreditMemo", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(30)]})
    assert (credit["TotalAmt"], credit["RemainingCredit"]) == (30, 30)
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(50)]})
    unapplied = await api.create("Payment", {"CustomerRef": {"value": buyer["Id"]}, "TotalAmt": 15})
    assert unapplied["UnappliedAmt"] == 15
    assert (await api.read("Customer", buyer["Id"]))["Balance"] == 5  # 50 - 30 - 15
    apply_credit = await api.create(
        "Payment",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "TotalAmt": 0,
            "Line": [
                {"Amount": 30, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
                {"Amount": 30, "LinkedTxn": [{"TxnId": credit["Id"], "TxnType": "CreditMemo"}]},
            ],
        },
    )
    assert apply_credit["UnappliedAmt"] == 0
    assert (await api.read("CreditMemo", credit["Id"]))["RemainingCredit"] == 0
    assert (await api.read("Invoice", invoice["Id"]))["Balance"] == 20


async def test_voiding_a_paid_invoice_unapplies_the_payment(api: Api) -> None:
    buyer = await customer(api)
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(25)]})
    payment = await api.create(
        "Payment",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "TotalAmt": 25,
            "Line": [{"Amount": 25, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    current = await api.read("Invoice", invoice["Id"])
    await api.post("invoice", {"Id": invoice["Id"], "SyncToken": current["SyncToken"]}, operation="void")
    after = await api.read("Payment", payment["Id"])
    assert after["UnappliedAmt"] == 25
    assert after["Line"] == []


# ---------------------------------------------------------------------------- sales tax


def naive_tax(amounts: list[str], rate: str) -> Decimal:
    return (sum(Decimal(a) for a in amounts) * Decimal(rate) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)


async def test_ast_computes_per_line_so_a_naive_client_is_a_cent_off(api: Api) -> None:
    buyer = await customer(api, "Boston Buyer", state="MA")  # MA: one 6.25 % rate
    invoice = await api.create(
        "Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [tax_line(0.25), tax_line(0.25)]}
    )
    detail = invoice["TxnTaxDetail"]
    assert detail["TotalTax"] == 0.04  # 0.015625 -> 0.02, twice
    assert naive_tax(["0.25", "0.25"], "6.25") == Decimal("0.03")
    assert invoice["TotalAmt"] == 0.54
    assert detail["TaxLine"][0]["TaxLineDetail"]["TaxPercent"] == 6.25


async def test_ast_uses_the_ship_to_state_and_ignores_the_code_sent(api: Api) -> None:
    texas = await customer(api, "Austin Buyer", state="TX")  # 6.25 % + 2 %
    invoice = await api.create(
        "Invoice",
        {
            "CustomerRef": {"value": texas["Id"]},
            "Line": [tax_line(100)],
            "TxnTaxDetail": {"TxnTaxCodeRef": {"value": "1"}},
        },
    )
    assert invoice["TxnTaxDetail"]["TotalTax"] == 8.25
    assert invoice["TotalAmt"] == 108.25
    assert invoice["TxnTaxDetail"]["TxnTaxCodeRef"]["value"] != "1"


async def test_ast_honours_a_total_tax_sent_by_the_client(api: Api) -> None:
    buyer = await customer(api, "Pinned", state="MA")
    invoice = await api.create(
        "Invoice",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "Line": [tax_line(0.25), tax_line(0.25)],
            "TxnTaxDetail": {"TotalTax": 0.03},
        },
    )
    assert invoice["TxnTaxDetail"]["TotalTax"] == 0.03
    assert invoice["TotalAmt"] == 0.53


async def test_non_taxable_lines_and_exempt_customers_pay_no_tax(api: Api) -> None:
    buyer = await customer(api, "Exempt", state="MA", Taxable=False)
    exempt = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [tax_line(100)]})
    assert exempt["TxnTaxDetail"]["TotalTax"] == 0
    other = await customer(api, "Plain", state="MA")
    untaxed = await api.create("Invoice", {"CustomerRef": {"value": other["Id"]}, "Line": [line(100)]})
    assert untaxed["TxnTaxDetail"]["TotalTax"] == 0


async def test_non_ast_company_honours_what_the_client_sends(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    api = await company_api(emulator, emulator_client, ast=False)
    buyer = await customer(api, "Manual", state="MA")
    none_sent = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [tax_line(100)]})
    assert none_sent["TxnTaxDetail"]["TotalTax"] == 0
    codes = (await api.query("select * from TaxCode where Name = 'Texas'"))["TaxCode"]
    by_code = await api.create(
        "Invoice",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "Line": [tax_line(100)],
            "TxnTaxDetail": {"TxnTaxCodeRef": {"value": codes[0]["Id"]}},
        },
    )
    assert by_code["TxnTaxDetail"]["TotalTax"] == 8.25
    by_total = await api.create(
        "Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [tax_line(100)], "TxnTaxDetail": {"TotalTax": 1.23}}
    )
    assert by_total["TotalAmt"] == 101.23


async def test_sparse_update_with_new_lines_recomputes_tax(api: Api) -> None:
    buyer = await customer(api, "Recompute", state="MA")
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [tax_line(100)]})
    assert invoice["TxnTaxDetail"]["TotalTax"] == 6.25
    response = await api.post(
        "invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "Line": [tax_line(200)]}
    )
    updated = response.json()["Invoice"]
    assert (updated["TxnTaxDetail"]["TotalTax"], updated["TotalAmt"]) == (12.5, 212.5)
