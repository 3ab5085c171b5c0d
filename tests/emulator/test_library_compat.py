"""The widely used Python QBO libraries run against the emulator over real HTTP, unchanged.

``intuit-oauth`` 1.2.6 is pointed at the emulator through its documented ``environment`` argument (a discovery
URL); ``python-quickbooks`` 0.9.12 through its base-URL class attribute. ``OAUTHLIB_INSECURE_TRANSPORT`` is
set because the emulator speaks plain HTTP on loopback (requests-oauthlib otherwise refuses http URLs).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import AuthorizationException, ObjectNotFoundException, QuickbooksException
from quickbooks.objects.account import Account
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.preferences import Preferences

from qbo_emulator import DEV_CLIENT_ID, DEV_CLIENT_SECRET
from tests.fixtures.emulator import ServerHandle

REDIRECT = "http://localhost:5000/callback"


def connect(server: ServerHandle) -> tuple[AuthClient, str]:
    """The OAuth dance as a web app does it: authorization URL, follow the redirect, exchange the code."""
    auth = AuthClient(
        DEV_CLIENT_ID, DEV_CLIENT_SECRET, REDIRECT, f"{server.base_url}/.well-known/openid_sandbox_configuration/"
    )
    url = auth.get_authorization_url([Scopes.ACCOUNTING])
    redirect = requests.get(url, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["Location"]).query).items()}
    assert params["state"] == auth.state_token
    auth.get_bearer_token(params["code"], realm_id=params["realmId"])
    return auth, params["realmId"]


@pytest.fixture
def quickbooks(emulator_server: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> QuickBooks:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setattr(QuickBooks, "api_url_v3", f"{emulator_server.base_url}/v3")
    emulator_server.create_company(name="Library Co")
    auth, realm = connect(emulator_server)
    client: QuickBooks = QuickBooks(
        auth_client=auth, refresh_token=auth.refresh_token, company_id=realm, minorversion=75
    )
    return client


def test_intuit_oauth_code_exchange_refresh_and_revoke(emulator_server: ServerHandle) -> None:
    emulator_server.create_company(name="OAuth Co")
    auth, realm = connect(emulator_server)
    assert auth.realm_id == realm
    assert auth.expires_in == 3600
    assert auth.x_refresh_token_expires_in == 8_726_400
    first_access, first_refresh = auth.access_token, auth.refresh_token
    auth.refresh()
    assert auth.access_token != first_access
    assert auth.refresh_token == first_refresh  # inside the 24 h rotation period
    emulator_server.call(lambda: emulator_server.core.clock.advance(86_400))
    auth.refresh()
    assert auth.refresh_token != first_refresh
    with pytest.raises(AuthClientError) as stale:
        auth.refresh(refresh_token=first_refresh)
    assert stale.value.status_code == 400
    assert stale.value.intuit_tid
    assert auth.revoke() is True
    with pytest.raises(AuthClientError):
        auth.refresh()


def test_customers_save_get_update_filter_count(quickbooks: QuickBooks) -> None:
    names = ["O'Brien & Sons", "Zoë Ñúñez", "x" * 500]
    saved = []
    for name in names:
        customer = Customer()
        customer.DisplayName = name
        customer.GivenName = name[:20]
        saved.append(customer.save(qb=quickbooks))
    assert [c.DisplayName for c in saved] == names
    fetched = Customer.get(saved[0].Id, qb=quickbooks)
    assert fetched.DisplayName == "O'Brien & Sons"
    fetched.Notes = "updated through python-quickbooks"
    updated = fetched.save(qb=quickbooks)
    assert (updated.SyncToken, updated.Notes) == ("1", "updated through python-quickbooks")
    assert [c.Id for c in Customer.filter(DisplayName="O'Brien & Sons", qb=quickbooks)] == [saved[0].Id]
    assert len(Customer.where("DisplayName LIKE '%Ñúñez'", qb=quickbooks)) == 1
    assert Customer.count(qb=quickbooks) == 3
    ordered = Customer.query("SELECT * FROM Customer ORDERBY DisplayName DESC MAXRESULTS 2", qb=quickbooks)
    assert [c.DisplayName for c in ordered] == ["Zoë Ñúñez", "x" * 500]
    assert len(Customer.all(qb=quickbooks)) == 3
    assert len(Customer.choose([saved[1].Id, saved[2].Id], qb=quickbooks)) == 2
    assert Customer.filter(DisplayName="Nobody", qb=quickbooks) == []
    long_name = Customer.get(saved[2].Id, qb=quickbooks)
    long_name.CompanyName = "Long Names Ltd"
    assert long_name.save(qb=quickbooks).DisplayName == "x" * 500  # a full-update round trip validates


def test_items_invoices_payments_void_and_delete(quickbooks: QuickBooks) -> None:
    income = Account.filter(Name="Services", qb=quickbooks)[0]
    item = Item()
    item.Name, item.Type, item.UnitPrice = "Consulting", "Service", 150
    item.IncomeAccountRef = income.to_ref()
    item = item.save(qb=quickbooks)
    assert [i.Name for i in Item.all(qb=quickbooks) if i.Name == "Consulting"] == ["Consulting"]
    customer = Customer()
    customer.DisplayName = "Invoice Customer"
    customer = customer.save(qb=quickbooks)

    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.DocNumber = "DOC-123456789012345678"[:21]
    for _ in range(250):
        sales_line = SalesItemLine()
        sales_line.Amount = 300
        sales_line.SalesItemLineDetail = SalesItemLineDetail()
        sales_line.SalesItemLineDetail.ItemRef = item.to_ref()
        sales_line.SalesItemLineDetail.Qty = 2
        sales_line.SalesItemLineDetail.UnitPrice = 150
        invoice.Line.append(sales_line)
    invoice = invoice.save(qb=quickbooks)
    assert (invoice.DocNumber, float(invoice.TotalAmt), len(invoice.Line)) == ("DOC-12345678901234567", 75000, 251)

    payment = Payment()
    payment.CustomerRef = customer.to_ref()
    payment.TotalAmt = 1000
    payment_line = PaymentLine()
    payment_line.Amount = 1000
    payment_line.LinkedTxn.append(invoice.to_linked_txn())
    payment.Line.append(payment_line)
    payment = payment.save(qb=quickbooks)
    assert float(Invoice.get(invoice.Id, qb=quickbooks).Balance) == 74000

    payment.void(qb=quickbooks)
    assert float(Invoice.get(invoice.Id, qb=quickbooks).Balance) == 75000
    current = Invoice.get(invoice.Id, qb=quickbooks)
    current.void(qb=quickbooks)
    voided = Invoice.get(invoice.Id, qb=quickbooks)
    assert (float(voided.TotalAmt), voided.PrivateNote) == (0, "Voided")
    voided.delete(qb=quickbooks)
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(invoice.Id, qb=quickbooks)


def test_batch_manager_chunks_and_reports_faults(quickbooks: QuickBooks) -> None:
    taken = Customer()
    taken.DisplayName = "Already Here"
    taken.save(qb=quickbooks)
    customers = []
    for n in range(34):
        customer = Customer()
        customer.DisplayName = f"Batch {n}"
        customers.append(customer)
    duplicate = Customer()
    duplicate.DisplayName = "Already Here"
    customers.append(duplicate)
    result = batch_create(customers, qb=quickbooks)
    assert len(result.successes) == 34
    assert len(result.faults) == 1
    assert result.faults[0].Error[0].code == "6240"
    assert Customer.count(qb=quickbooks) == 35


def test_change_data_capture(emulator_server: ServerHandle, quickbooks: QuickBooks) -> None:
    zone = emulator_server.call(lambda: emulator_server.core.zone_for(quickbooks.company_id))
    since = (emulator_server.call(emulator_server.core.clock.now) - timedelta(minutes=5)).astimezone(zone)
    customer = Customer()
    customer.DisplayName = "Changed Lately"
    customer = customer.save(qb=quickbooks)
    response = change_data_capture([Customer, Invoice], since.replace(tzinfo=None), qb=quickbooks)
    assert [c.Id for c in response.Customer] == [customer.Id]
    assert not hasattr(response, "Invoice")


def test_errors_map_to_the_library_exceptions(emulator_server: ServerHandle, quickbooks: QuickBooks) -> None:
    first = Customer()
    first.DisplayName = "Unique"
    first.save(qb=quickbooks)
    again = Customer()
    again.DisplayName = "Unique"
    with pytest.raises(QuickbooksException) as duplicate:
        again.save(qb=quickbooks)
    assert duplicate.value.error_code == 6240
    with pytest.raises(QuickbooksException) as parse_error:
        Customer.where("DisplayName = 'unterminated", qb=quickbooks)
    assert parse_error.value.error_code == 4000
    assert CompanyInfo.get(quickbooks.company_id, qb=quickbooks).CompanyName == "Library Co"
    assert Preferences.get(qb=quickbooks).TaxPrefs.UsingSalesTax is True
    emulator_server.call(lambda: emulator_server.core.clock.advance(3601))
    with pytest.raises(AuthorizationException):
        Customer.all(qb=quickbooks)
