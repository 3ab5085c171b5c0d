"""What goes on the wire for each operation: URL shapes, minorversion, headers, bodies, unwrapping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Literal

import httpx
import pytest

from qbsync.qbo import QboApiError, QboClientSettings, QboQuery
from tests.qbo_client.fakes import ORG, REALM, ScriptedQbo, json_response, make_client

TIME = "2024-05-01T10:00:00.000-07:00"
BASE = f"/v3/company/{REALM}"


def ok(entity: str, obj: dict[str, object]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: json_response(200, {entity: obj, "time": TIME})


async def test_create_posts_json_with_requestid_minorversion_and_accept() -> None:
    qbo = ScriptedQbo(default=ok("Customer", {"Id": "1", "DisplayName": "O'Brien"}))
    client, _ = make_client(qbo)
    async with client:
        created = await client.company(ORG).create("Customer", {"DisplayName": "O'Brien"}, request_id="rid-1")
    assert created == {"Id": "1", "DisplayName": "O'Brien"}
    (sent,) = qbo.requests
    assert (sent.method, sent.path) == ("POST", f"{BASE}/customer")
    assert sent.params == {"minorversion": "75", "requestid": "rid-1"}
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"DisplayName": "O'Brien"}


async def test_create_passes_extra_params_but_not_reserved_ones() -> None:
    qbo = ScriptedQbo(default=ok("Invoice", {"Id": "9"}))
    client, _ = make_client(qbo)
    async with client:
        company = client.company(ORG)
        await company.create(
            "Invoice", {"DocNumber": "A-1"}, request_id="r", params={"include": "allowduplicatedocnum"}
        )
        with pytest.raises(ValueError):
            await company.create("Invoice", {}, request_id="r", params={"requestid": "other"})
    assert qbo.requests[0].params["include"] == "allowduplicatedocnum"
    assert len(qbo.requests) == 1


async def test_read_uses_entity_and_id_path() -> None:
    qbo = ScriptedQbo(default=ok("Invoice", {"Id": "42"}))
    client, _ = make_client(qbo)
    async with client:
        assert (await client.company(ORG).read("Invoice", "42"))["Id"] == "42"
    assert (qbo.requests[0].method, qbo.requests[0].path) == ("GET", f"{BASE}/invoice/42")
    assert "requestid" not in qbo.requests[0].params


@pytest.mark.parametrize(("sparse", "expected"), [(True, True), (False, False)])
async def test_update_sends_id_synctoken_and_sparse_flag(sparse: bool, expected: bool) -> None:
    qbo = ScriptedQbo(default=ok("Customer", {"Id": "5", "SyncToken": "3"}))
    client, _ = make_client(qbo)
    async with client:
        await client.company(ORG).update(
            "Customer", {"Id": "5", "SyncToken": "2", "Active": False}, request_id="u1", sparse=sparse
        )
    assert qbo.requests[0].path == f"{BASE}/customer"
    assert qbo.requests[0].json() == {"Id": "5", "SyncToken": "2", "Active": False, "sparse": expected}


async def test_update_without_synctoken_is_refused_before_sending() -> None:
    qbo = ScriptedQbo()
    client, _ = make_client(qbo)
    async with client:
        with pytest.raises(ValueError):
            await client.company(ORG).update("Customer", {"Id": "5"}, request_id="u1")
    assert qbo.requests == []


async def test_delete_uses_operation_delete() -> None:
    qbo = ScriptedQbo(default=ok("Invoice", {"Id": "8", "status": "Deleted"}))
    client, _ = make_client(qbo)
    async with client:
        deleted = await client.company(ORG).delete("Invoice", "8", "4", request_id="d1")
    assert deleted["status"] == "Deleted"
    assert qbo.requests[0].params == {"operation": "delete", "minorversion": "75", "requestid": "d1"}
    assert qbo.requests[0].json() == {"Id": "8", "SyncToken": "4"}


async def test_void_invoice_and_void_payment_use_qbos_two_url_forms() -> None:
    qbo = ScriptedQbo(
        [
            json_response(200, {"Invoice": {"Id": "1"}, "time": TIME}),
            json_response(200, {"Payment": {"Id": "2"}, "time": TIME}),
        ]
    )
    client, _ = make_client(qbo)
    async with client:
        company = client.company(ORG)
        await company.void("Invoice", "1", "0", request_id="v1")
        await company.void("Payment", "2", "1", request_id="v2")
        with pytest.raises(ValueError):
            await company.void("Customer", "3", "0", request_id="v3")
    invoice, payment = qbo.requests
    assert invoice.path == f"{BASE}/invoice"
    assert invoice.params["operation"] == "void"
    assert invoice.json() == {"Id": "1", "SyncToken": "0"}
    assert payment.path == f"{BASE}/payment"
    assert (payment.params["operation"], payment.params["include"]) == ("update", "void")
    assert payment.json() == {"Id": "2", "SyncToken": "1", "sparse": True}


async def test_short_query_is_a_get_and_long_query_is_posted_as_application_text() -> None:
    page = {"QueryResponse": {"Customer": [{"Id": "1"}], "startPosition": 1, "maxResults": 1}, "time": TIME}
    qbo = ScriptedQbo(default=lambda request: json_response(200, page))
    client, _ = make_client(qbo)
    long_name = "N" * 2000
    async with client:
        company = client.company(ORG)
        short = await company.query(QboQuery.select("Customer").where("Active", "=", True))
        await company.query(QboQuery.select("Customer").where("DisplayName", "=", long_name))
    get, post = qbo.requests
    assert (get.method, get.path) == ("GET", f"{BASE}/query")
    assert get.params["query"] == "SELECT * FROM Customer WHERE Active = true"
    assert (post.method, post.headers["content-type"]) == ("POST", "application/text")
    assert post.body.decode() == f"SELECT * FROM Customer WHERE DisplayName = '{long_name}'"
    assert short.rows == [{"Id": "1"}]
    assert short.entity == "Customer"


async def test_query_with_no_match_has_no_entity_key_and_yields_no_rows() -> None:
    qbo = ScriptedQbo(default=lambda request: json_response(200, {"QueryResponse": {}, "time": TIME}))
    client, _ = make_client(qbo)
    async with client:
        page = await client.company(ORG).query(QboQuery.select("Invoice").where("DocNumber", "=", "nope"))
    assert page.rows == []


async def test_count_sends_count_star_and_reads_total_count() -> None:
    qbo = ScriptedQbo(default=lambda request: json_response(200, {"QueryResponse": {"totalCount": 1234}, "time": TIME}))
    client, _ = make_client(qbo)
    async with client:
        total = await client.company(ORG).count(QboQuery.select("Customer").order_by("Id").max_results(5))
    assert total == 1234
    assert qbo.requests[0].params["query"] == "SELECT COUNT(*) FROM Customer"


async def test_preferences_and_company_info() -> None:
    qbo = ScriptedQbo(
        [
            json_response(200, {"Preferences": {"TaxPrefs": {"PartnerTaxEnabled": True}}, "time": TIME}),
            json_response(200, {"CompanyInfo": {"CompanyName": "Demo"}, "time": TIME}),
        ]
    )
    client, _ = make_client(qbo)
    async with client:
        company = client.company(ORG)
        prefs = await company.preferences()
        info = await company.company_info()
    assert prefs["TaxPrefs"]["PartnerTaxEnabled"] is True
    assert info["CompanyName"] == "Demo"
    assert [r.path for r in qbo.requests] == [f"{BASE}/preferences", f"{BASE}/companyinfo/{REALM}"]


async def test_a_success_without_the_expected_object_is_an_error() -> None:
    qbo = ScriptedQbo(default=lambda request: json_response(200, {"time": TIME}))
    client, _ = make_client(qbo)
    async with client:
        with pytest.raises(QboApiError):
            await client.company(ORG).read("Customer", "1")


@pytest.mark.parametrize("bad", ["Customer/../x", "", "a b", "Cust'omer"])
async def test_entity_names_and_ids_cannot_change_the_url(bad: str) -> None:
    qbo = ScriptedQbo()
    client, _ = make_client(qbo)
    async with client:
        company = client.company(ORG)
        with pytest.raises(ValueError):
            await company.read(bad, "1")
        with pytest.raises(ValueError):
            await company.read("Customer", bad)
    assert qbo.requests == []


@pytest.mark.parametrize("request_id", ["", "x" * 51, "has space", "ünï"])
async def test_invalid_request_ids_are_refused(request_id: str) -> None:
    qbo = ScriptedQbo()
    client, _ = make_client(qbo)
    async with client:
        with pytest.raises(ValueError):
            await client.company(ORG).create("Customer", {}, request_id=request_id)
    assert qbo.requests == []


@pytest.mark.parametrize(
    ("environment", "url"),
    [
        ("production", "https://quickbooks.api.intuit.com"),
        ("sandbox", "https://sandbox-quickbooks.api.intuit.com"),
        ("emulator", "http://127.0.0.1:8765"),
    ],
)
def test_base_urls_per_environment(environment: Literal["production", "sandbox", "emulator"], url: str) -> None:
    assert QboClientSettings(environment=environment).resolved_base_url == url
    assert QboClientSettings(environment=environment, base_url="http://x:1/").resolved_base_url == "http://x:1"


async def test_money_goes_out_exact_and_comes_back_as_decimal() -> None:
    qbo = ScriptedQbo(default=ok("Invoice", {"Id": "1", "TotalAmt": 448.40, "Balance": 0.1}))
    client, _ = make_client(qbo)
    line = {"Amount": Decimal("448.40"), "SalesItemLineDetail": {"Qty": 1, "UnitPrice": Decimal("448.40")}}
    async with client:
        company = client.company(ORG)
        invoice = await company.create("Invoice", {"TxnDate": date(2024, 5, 1), "Line": [line]}, request_id="r")
        with pytest.raises(ValueError):
            await company.create("Invoice", {"Amount": Decimal("0.12345678901234567891")}, request_id="r2")
    assert b'"Amount": 448.4,' in qbo.requests[0].body
    assert qbo.requests[0].json()["TxnDate"] == "2024-05-01"
    assert invoice["TotalAmt"] == Decimal("448.4")
    assert isinstance(invoice["Balance"], Decimal)
    assert len(qbo.requests) == 1
