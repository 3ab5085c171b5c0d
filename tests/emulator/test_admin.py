"""The admin API: companies, demo seed, inspection, token shortcut, the accountant's actions, clock, reset."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from qbo_emulator import DEV_CLIENT_SECRET, DEV_VERIFIER_TOKEN
from tests.emulator.helpers import Api, fault_of, line
from tests.fixtures.emulator import EmulatorHandle


async def new_company(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/_admin/companies", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def token_api(client: httpx.AsyncClient, realm: str) -> Api:
    tokens = (await client.post(f"/_admin/companies/{realm}/tokens", json={})).json()
    assert tokens["realmId"] == realm
    assert tokens["token_type"] == "bearer"
    return Api(client, realm, tokens["access_token"])


async def test_health_and_config_without_secrets(emulator_client: httpx.AsyncClient) -> None:
    assert (await emulator_client.get("/health")).json() == {"status": "ok", "companies": 0}
    config = (await emulator_client.get("/_admin/config")).text
    assert "qbsync-dev-client" in config
    assert DEV_CLIENT_SECRET not in config
    assert DEV_VERIFIER_TOKEN not in config


async def test_company_switches_are_applied_and_visible_through_the_api(emulator_client: httpx.AsyncClient) -> None:
    company = await new_company(
        emulator_client, name="Switches", ast=False, custom_txn_numbers=False, timezone="America/New_York"
    )
    assert (company["ast"], company["custom_txn_numbers"], company["duplicate_docnum_check"]) == (False, False, True)
    api = await token_api(emulator_client, company["realm_id"])
    prefs = (await api.get("preferences")).json()
    assert prefs["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is False
    assert prefs["time"].endswith(("-05:00", "-04:00"))
    patched = await emulator_client.patch(
        f"/_admin/companies/{company['realm_id']}", json={"ast": True, "duplicate_docnum_check": False}
    )
    assert (patched.json()["ast"], patched.json()["duplicate_docnum_check"]) == (True, False)
    assert (await api.get("preferences")).json()["Preferences"]["TaxPrefs"]["PartnerTaxEnabled"] is True
    listed = (await emulator_client.get("/_admin/companies")).json()
    assert [c["name"] for c in listed] == ["Switches"]
    assert (await emulator_client.get("/_admin/companies/nope")).status_code == 404


async def test_demo_company_is_realistic(emulator_client: httpx.AsyncClient) -> None:
    company = await new_company(emulator_client, name="Demo", seed_demo=True)
    realm = company["realm_id"]

    async def rows(entity: str, **params: str) -> list[dict[str, Any]]:
        response = await emulator_client.get(f"/_admin/companies/{realm}/entities/{entity}", params=params)
        found: list[dict[str, Any]] = response.json()[entity]
        return found

    items = await rows("Item")
    assert {"Service", "NonInventory", "Inventory", "Group", "Category"} <= {i["Type"] for i in items}
    assert any(i["Active"] is False for i in items)
    assert len(await rows("Item", active="false")) == 1
    assert {"Due on receipt", "Net 15", "Net 30"} <= {t["Name"] for t in await rows("Term")}
    assert len(await rows("TaxCode")) >= 5
    assert {a["AccountSubType"] for a in await rows("Account")} >= {
        "ServiceFeeIncome",
        "AccountsReceivable",
        "UndepositedFunds",
        "Inventory",
    }
    assert len(await rows("Vendor")) == 1
    assert len(await rows("Employee")) == 1
    assert len(await rows("PaymentMethod")) >= 3
    customers = await rows("Customer")
    assert any("'" in c["DisplayName"] for c in customers)
    assert any(not c["DisplayName"].isascii() for c in customers)
    invoices = await rows("Invoice")
    assert any(0 < i["Balance"] < i["TotalAmt"] for i in invoices)  # partially paid
    assert any(i["Balance"] == 0 and i["TotalAmt"] > 0 for i in invoices)  # paid
    single = await emulator_client.get(f"/_admin/companies/{realm}/entities/Invoice/{invoices[0]['Id']}")
    assert single.json()["Invoice"] == invoices[0]
    again = await emulator_client.post(f"/_admin/companies/{realm}/seed-demo")
    assert again.status_code == 400
    assert len(await rows("Customer")) == len(customers)


async def test_the_accountant_records_payments_refunds_and_price_changes(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    realm = (await new_company(emulator_client, name="Books"))["realm_id"]
    api = await token_api(emulator_client, realm)
    buyer = await api.create("Customer", {"DisplayName": "Client"})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(100)]})
    base = f"/_admin/companies/{realm}/accountant"
    paid = await emulator_client.post(
        f"{base}/payments", json={"customer_id": buyer["Id"], "amount": 30, "invoice_id": invoice["Id"]}
    )
    assert paid.status_code == 201
    assert (await api.read("Invoice", invoice["Id"]))["Balance"] == 70
    refund = await emulator_client.post(f"{base}/refunds", json={"customer_id": buyer["Id"], "amount": 12.5})
    assert refund.json()["RefundReceipt"]["TotalAmt"] == 12.5
    item = await api.create(
        "Item", {"Name": "Widget", "Type": "Service", "UnitPrice": 5, "IncomeAccountRef": {"value": "1"}}
    )
    repriced = await emulator_client.post(f"{base}/items/{item['Id']}", json={"unit_price": 7.25})
    assert repriced.json()["Item"]["UnitPrice"] == 7.25
    await emulator_client.post(f"{base}/items/{item['Id']}", json={"active": False})
    refused = await api.post("invoice", {"CustomerRef": {"value": buyer["Id"]}, "Line": [line(7.25, item=item["Id"])]})
    assert fault_of(refused)["code"] == "610"
    voided = await emulator_client.post(
        f"{base}/write", json={"entity": "Invoice", "operation": "void", "body": {"Id": invoice["Id"]}}
    )
    assert voided.json()["Invoice"]["TotalAmt"] == 0
    stale = await api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"})
    assert fault_of(stale)["code"] == "5010"
    bad = await emulator_client.post(f"{base}/payments", json={"customer_id": "999", "amount": 1})
    assert bad.status_code == 400
    assert bad.json()["Fault"]["Error"][0]["code"] == "2500"


async def test_stats_count_requests_statuses_and_operations(emulator_client: httpx.AsyncClient) -> None:
    realm = (await new_company(emulator_client, name="Counted"))["realm_id"]
    api = await token_api(emulator_client, realm)
    await api.create("Customer", {"DisplayName": "One"})
    await api.post("customer", {"DisplayName": "One"})
    await api.query("select * from Customer")
    stats = (await emulator_client.get(f"/_admin/companies/{realm}/stats")).json()
    assert stats["requests"] == 3
    assert stats["by_status"] == {"200": 2, "400": 1}
    assert stats["by_operation"] == {"create": 2, "query": 1}
    assert stats["throttled"] == 0


async def test_clock_moves_forward_only(emulator: EmulatorHandle, emulator_client: httpx.AsyncClient) -> None:
    before = (await emulator_client.get("/_admin/clock")).json()
    moved = (await emulator_client.post("/_admin/clock", json={"advance_s": 3600})).json()
    assert moved["offset_s"] - before["offset_s"] == 3600
    target = emulator.core.clock.now() + timedelta(days=2)
    jumped = (await emulator_client.post("/_admin/clock", json={"set": target.isoformat()})).json()
    assert jumped["offset_s"] >= 2 * 86_400
    backwards = await emulator_client.post("/_admin/clock", json={"set": "2001-01-01T00:00:00+00:00"})
    assert backwards.status_code == 400


async def test_reset_forgets_everything(emulator: EmulatorHandle, emulator_client: httpx.AsyncClient) -> None:
    realm = (await new_company(emulator_client, name="Gone"))["realm_id"]
    api = await token_api(emulator_client, realm)
    await emulator_client.post("/_admin/faults", json={"kind": "throttle"})
    assert (await emulator_client.post("/_admin/reset")).json() == {"reset": True}
    assert (await emulator_client.get("/_admin/companies")).json() == []
    assert (await emulator_client.get("/_admin/faults")).json() == []
    assert (await api.get(f"companyinfo/{realm}")).status_code == 401


async def test_admin_validates_its_input(emulator_client: httpx.AsyncClient) -> None:
    assert (await emulator_client.post("/_admin/companies", json={"nmae": "typo"})).status_code == 400
    assert (await emulator_client.post("/_admin/faults", json={"kind": "explode"})).status_code == 400
    assert (
        await emulator_client.post("/_admin/webhooks", json={"url": "http://x", "client_id": "nobody"})
    ).status_code == 404
    assert (await emulator_client.post("/_admin/companies/x/tokens", json={})).status_code == 404


async def test_openapi_document_describes_the_admin_api(emulator_client: httpx.AsyncClient) -> None:
    document = (await emulator_client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert "/_admin/companies" in paths
    assert "post" in paths["/_admin/faults"]
    assert "/v3/company/{realmId}/query" in paths
    assert "/oauth2/v1/tokens/bearer" in paths
