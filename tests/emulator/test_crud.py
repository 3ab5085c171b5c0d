"""Create, read, full and sparse update, delete and void, with QBO's wrappers, headers and SyncToken rules."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from tests.emulator.helpers import Api, fault_of, line

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[-+]\d\d:\d\d$")
META = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")


async def test_create_returns_the_wrapper_headers_and_server_fields(api: Api) -> None:
    response = await api.post("customer", {"DisplayName": "Acme"}, minorversion="75")
    assert response.status_code == 200
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", response.headers["intuit_tid"])
    assert response.headers["qbo-version"]
    body = response.json()
    assert set(body) == {"Customer", "time"}
    assert TIME.match(body["time"])
    assert body["time"].endswith(("-08:00", "-07:00"))  # the company's Pacific offset
    customer = body["Customer"]
    assert customer["SyncToken"] == "0"
    assert customer["domain"] == "QBO"
    assert META.match(customer["MetaData"]["CreateTime"])
    assert customer["MetaData"]["CreateTime"] == customer["MetaData"]["LastUpdatedTime"]
    assert customer["Balance"] == 0
    assert customer["FullyQualifiedName"] == "Acme"


async def test_ids_are_increasing_numeric_strings_per_company(api: Api) -> None:
    ids = [int((await api.create("Customer", {"DisplayName": f"C{n}"}))["Id"]) for n in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    invoice = await api.create("Invoice", {"CustomerRef": {"value": str(ids[0])}, "Line": [line(10)]})
    payment = await api.create("Payment", {"CustomerRef": {"value": str(ids[0])}, "TotalAmt": 1})
    assert int(payment["Id"]) > int(invoice["Id"])


async def test_read_returns_what_was_written_and_610_for_unknown_ids(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Reader", "GivenName": "Rea"})
    assert await api.read("Customer", created["Id"]) == created
    missing = await api.get("customer/9999")
    assert missing.status_code == 400
    assert fault_of(missing)["code"] == "610"
    assert fault_of(missing)["Message"] == "Object Not Found"


async def test_full_update_replaces_and_clears_omitted_fields(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Full", "Notes": "keep?", "CompanyName": "Full Inc"})
    response = await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "DisplayName": "Full 2"})
    updated = response.json()["Customer"]
    assert updated["SyncToken"] == "1"
    assert updated["DisplayName"] == "Full 2"
    assert "Notes" not in updated
    assert "CompanyName" not in updated
    assert updated["MetaData"]["CreateTime"] == created["MetaData"]["CreateTime"]


async def test_sparse_update_changes_only_the_listed_fields(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Sparse", "Notes": "kept", "CompanyName": "Sparse Inc"})
    response = await api.post(
        "customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "Renamed Inc"}
    )
    updated = response.json()["Customer"]
    assert (updated["Notes"], updated["CompanyName"], updated["SyncToken"]) == ("kept", "Renamed Inc", "1")


async def test_stale_sync_token_gets_5010_with_qbos_wording(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Stale"})
    first = await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "a"})
    assert first.status_code == 200
    second = await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "b"})
    assert second.status_code == 400
    error = fault_of(second)
    assert (error["code"], error["Message"]) == ("5010", "Stale Object Error")
    assert "were working on this at the same time" in error["Detail"]
    assert second.json()["Fault"]["type"] == "ValidationFault"
    assert (await api.read("Customer", created["Id"]))["Notes"] == "a"


async def test_sync_token_accepts_numbers_as_client_libraries_send_them(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Numeric", "SyncToken": 0, "sparse": False})
    response = await api.post("customer", {"Id": created["Id"], "SyncToken": 0, "sparse": True, "Notes": "n"})
    assert response.json()["Customer"]["SyncToken"] == "1"


async def test_name_list_entities_cannot_be_deleted(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Forever"})
    response = await api.post("customer", {"Id": created["Id"], "SyncToken": "0"}, operation="delete")
    assert response.status_code == 400
    assert fault_of(response)["code"] == "500"
    assert fault_of(response)["Message"] == "Unsupported Operation"
    deactivated = await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert deactivated.json()["Customer"]["Active"] is False


async def test_deleting_a_transaction_removes_it(api: Api) -> None:
    customer = await api.create("Customer", {"DisplayName": "Del"})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line(5)]})
    stale = await api.post("invoice", {"Id": invoice["Id"], "SyncToken": "7"}, operation="delete")
    assert fault_of(stale)["code"] == "5010"
    response = await api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    assert response.status_code == 200
    assert response.json()["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoice["Id"]}
    assert fault_of(await api.get(f"invoice/{invoice['Id']}"))["code"] == "610"


async def test_void_invoice_keeps_the_record_and_zeroes_it(api: Api) -> None:
    customer = await api.create("Customer", {"DisplayName": "Voided"})
    invoice = await api.create(
        "Invoice", {"CustomerRef": {"value": customer["Id"]}, "DocNumber": "V-1", "Line": [line(30, qty=3, price=10)]}
    )
    response = await api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="void")
    voided = response.json()["Invoice"]
    assert (voided["Id"], voided["DocNumber"], voided["SyncToken"]) == (invoice["Id"], "V-1", "1")
    assert (voided["TotalAmt"], voided["Balance"], voided["PrivateNote"]) == (0, 0, "Voided")
    assert all(ln["Amount"] == 0 for ln in voided["Line"])
    assert await api.read("Invoice", invoice["Id"]) == voided


async def test_void_payment_via_update_include_void_restores_the_invoice(api: Api) -> None:
    customer = await api.create("Customer", {"DisplayName": "Payer"})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line(100)]})
    payment = await api.create(
        "Payment",
        {
            "CustomerRef": {"value": customer["Id"]},
            "TotalAmt": 100,
            "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert (await api.read("Invoice", invoice["Id"]))["Balance"] == 0
    response = await api.post(
        "payment",
        {"Id": payment["Id"], "SyncToken": payment["SyncToken"], "sparse": True},
        operation="update",
        include="void",
    )
    voided = response.json()["Payment"]
    assert (voided["TotalAmt"], voided["PrivateNote"]) == (0, "Voided")
    restored = await api.read("Invoice", invoice["Id"])
    assert restored["Balance"] == 100
    assert restored["LinkedTxn"] == []


async def test_minorversion_is_accepted_old_and_new(api: Api) -> None:
    for version in ("4", "65", "75", "80"):
        assert (await api.get(f"companyinfo/{api.realm}", minorversion=version)).status_code == 200


async def test_paths_are_case_sensitive_and_unknown_resources_unsupported(api: Api) -> None:
    for rest in ("Customer", "widgets"):
        response = await api.post(rest, {"DisplayName": "x"})
        assert response.status_code == 400
        assert fault_of(response)["code"] == "500"
    assert (await api.get("customer")).status_code == 400


async def test_malformed_json_is_a_fault_not_a_crash(api: Api) -> None:
    response = await api.client.post(
        api.path("customer"), content=b"{not json", headers={**api.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert fault_of(response)["code"] == "2010"


async def test_company_info_and_preferences_read_and_update(api: Api) -> None:
    info = (await api.get(f"companyinfo/{api.realm}")).json()["CompanyInfo"]
    assert info["CompanyName"] == "Test Co"
    prefs = (await api.get("preferences")).json()["Preferences"]
    assert prefs["TaxPrefs"]["PartnerTaxEnabled"] is True
    response = await api.post(
        "preferences", {"SyncToken": prefs["SyncToken"], "SalesFormsPrefs": {"CustomTxnNumbers": False}}
    )
    updated = response.json()["Preferences"]
    assert updated["SalesFormsPrefs"]["CustomTxnNumbers"] is False
    assert updated["SalesFormsPrefs"]["AllowDiscount"] is True
    renamed = await api.post("companyinfo", {"SyncToken": info["SyncToken"], "CompanyName": "Renamed Co"})
    assert renamed.json()["CompanyInfo"]["CompanyName"] == "Renamed Co"


async def test_tax_codes_are_read_only_and_created_through_taxservice(api: Api) -> None:
    refused = await api.post("taxcode", {"Name": "Nope"})
    assert fault_of(refused)["code"] == "500"
    agency = await api.create("TaxAgency", {"DisplayName": "County Tax Office"})
    response = await api.post(
        "taxservice/taxcode",
        {
            "TaxCode": "Springfield",
            "TaxRateDetails": [
                {
                    "TaxRateName": "Springfield City",
                    "RateValue": "1.5",
                    "TaxAgencyId": agency["Id"],
                    "TaxApplicableOn": "Sales",
                }
            ],
        },
    )
    created = response.json()
    code = await api.read("TaxCode", created["TaxCodeId"])
    rate = await api.read("TaxRate", created["TaxRateDetails"][0]["TaxRateId"])
    assert code["Name"] == "Springfield"
    assert rate["RateValue"] == 1.5


async def test_invoice_pdf_and_send(api: Api, emulator_client: httpx.AsyncClient) -> None:
    customer = await api.create("Customer", {"DisplayName": "Mailme", "PrimaryEmailAddr": {"Address": "m@example.com"}})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line(12)]})
    pdf = await emulator_client.get(
        api.path(f"invoice/{invoice['Id']}/pdf"), headers={**api.headers, "Accept": "application/pdf"}
    )
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4")
    assert pdf.content.rstrip().endswith(b"%%EOF")
    sent = await emulator_client.post(
        api.path(f"invoice/{invoice['Id']}/send"), params={"sendTo": "other@example.com"}, headers=api.headers
    )
    body = sent.json()["Invoice"]
    assert (body["EmailStatus"], body["BillEmail"]["Address"], body["SyncToken"]) == (
        "EmailSent",
        "other@example.com",
        "1",
    )


async def test_access_log_has_one_line_per_request_and_no_secrets(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="qbo_emulator.access"):
        await api.get(f"companyinfo/{api.realm}", requestid="secret-looking-value")
    lines = [r.getMessage() for r in caplog.records if r.name == "qbo_emulator.access"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET /v3/company/{api.realm}/companyinfo/{api.realm} -> 200")
    assert api.token not in caplog.text
    assert "secret-looking-value" not in caplog.text
