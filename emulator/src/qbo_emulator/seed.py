"""Company creation and the demo data set.

Every new company gets what a fresh QBO company has: CompanyInfo, Preferences, a small chart of accounts
(income, A/R, Undeposited Funds, inventory asset, COGS, a bank), the "Services" and "Hours" items, standard
terms, payment methods, and US sales-tax agencies/rates/codes for several states (AST companies have every state
set up automatically). The demo data set is in ``demo``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from qbo_emulator.accounting import Accounting
from qbo_emulator.config import FidelityConfig
from qbo_emulator.context import WriteContext
from qbo_emulator.entities import BY_NAME
from qbo_emulator.store import Company, CompanySettings
from qbo_emulator.taxservice import insert_readonly

__all__ = ["TAX_TABLE", "id_by_name", "new_company"]

Row = dict[str, Any]

# state -> (agency, [(rate name, percent)]): combined rates of a representative city per state.
TAX_TABLE: Final[dict[str, tuple[str, list[tuple[str, str]]]]] = {
    "CA": ("California Department of Tax and Fee Administration", [("CA State", "7.25"), ("Alameda County", "3")]),
    "NY": ("New York State Department of Taxation", [("NY State", "4"), ("New York City", "4.875")]),
    "TX": ("Texas Comptroller of Public Accounts", [("TX State", "6.25"), ("Austin City", "2")]),
    "WA": ("Washington Department of Revenue", [("WA State", "6.5"), ("Seattle", "3.85")]),
    "IL": ("Illinois Department of Revenue", [("IL State", "6.25"), ("Chicago", "4")]),
    "FL": ("Florida Department of Revenue", [("FL State", "6"), ("Miami-Dade County", "1")]),
    "MA": ("Massachusetts Department of Revenue", [("MA State", "6.25")]),
    "OR": ("Oregon Department of Revenue", []),
}
_STATE_NAMES: Final = {
    "CA": "California",
    "NY": "New York",
    "TX": "Texas",
    "WA": "Washington",
    "IL": "Illinois",
    "FL": "Florida",
    "MA": "Massachusetts",
    "OR": "Oregon",
}


def _put_singleton(ctx: WriteContext, entity: str, row: Row) -> None:
    stamp = ctx.stamp
    row.update(Id="1", SyncToken="0", domain="QBO", sparse=False)
    row["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
    ctx.company.put(entity, row, ctx.now.timestamp())


def _company_info(settings: CompanySettings, start: date) -> Row:
    address = {"Id": "1", "Line1": "2600 Marine Way", "City": "Mountain View"}
    address.update(CountrySubDivisionCode=settings.state, PostalCode="94043", Country=settings.country)
    return {
        "CompanyName": settings.name,
        "LegalName": settings.name,
        "CompanyAddr": dict(address),
        "CustomerCommunicationAddr": dict(address),
        "LegalAddr": dict(address),
        "PrimaryPhone": {"FreeFormNumber": "(650) 555-0100"},
        "CompanyStartDate": start.isoformat(),
        "FiscalYearStartMonth": "January",
        "Country": settings.country,
        "Email": {"Address": settings.email},
        "WebAddr": {},
        "SupportedLanguages": "en",
        "NameValue": [
            {"Name": "NeoEnabled", "Value": "true"},
            {"Name": "IndustryType", "Value": "Professional Services"},
            {"Name": "SubscriptionStatus", "Value": "PAID"},
            {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
        ],
    }


def _preferences(ast: bool, custom_numbers: bool, net30: str) -> Row:
    return {
        "AccountingInfoPrefs": {
            "TrackDepartments": False,
            "ClassTrackingPerTxn": False,
            "CustomerTerminology": "Customers",
        },
        "ProductAndServicesPrefs": {
            "ForSales": True,
            "ForPurchase": True,
            "QuantityWithPriceAndRate": True,
            "QuantityOnHand": True,
        },
        "SalesFormsPrefs": {
            "CustomTxnNumbers": custom_numbers,
            "AllowDeposit": True,
            "AllowDiscount": True,
            "AllowEstimates": True,
            "AllowShipping": False,
            "AutoApplyCredit": True,
            "AutoApplyPayments": True,
            "PrintItemWithZeroAmount": True,
            "DefaultTerms": {"value": net30},
        },
        "VendorAndPurchasesPrefs": {"TrackingByCustomer": True, "BillableExpenseTracking": True},
        "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": ast},
        "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
        "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.DefaultCustomerMessage", "Value": "Thank you!"}]},
    }


_ACCOUNTS: Final = (
    ("Services", "Income", "ServiceFeeIncome"),
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("Checking", "Bank", "Checking"),
    ("Sales Tax Payable", "Other Current Liability", "SalesTaxPayable"),
)


def id_by_name(company: Company, entity: str, name: str) -> str:
    for row in company.tables[entity].values():
        if row.get("Name") == name or row.get("DisplayName") == name:
            return str(row["Id"])
    raise KeyError(f"{entity} {name!r} missing")


def _seed_tax(acc: Accounting, company: Company) -> None:
    for state, (agency_name, rates) in TAX_TABLE.items():
        agency = acc.create(BY_NAME["TaxAgency"], {"DisplayName": agency_name})
        details = []
        for rate_name, percent in rates:
            rate = insert_readonly(
                acc,
                "TaxRate",
                {
                    "Name": f"{rate_name} Sales Tax",
                    "Description": f"{rate_name} sales tax",
                    "Active": True,
                    "RateValue": float(percent),
                    "AgencyRef": {"value": agency["Id"]},
                    "SpecialTaxType": "NONE",
                    "DisplayType": "ReadOnly",
                },
            )
            details.append(
                {
                    "TaxRateRef": {"value": rate["Id"], "name": rate["Name"]},
                    "TaxTypeApplicable": "TaxOnAmount",
                    "TaxOrder": 0,
                }
            )
        code = insert_readonly(
            acc,
            "TaxCode",
            {
                "Name": _STATE_NAMES[state],
                "Description": f"{_STATE_NAMES[state]} sales tax",
                "Active": True,
                "Taxable": True,
                "TaxGroup": len(details) > 1,
                "SalesTaxRateList": {"TaxRateDetail": details},
                "PurchaseTaxRateList": {"TaxRateDetail": []},
            },
        )
        company.tax_regions[state] = code["Id"]


def new_company(
    realm_id: str,
    settings: CompanySettings,
    now: datetime,
    fidelity: FidelityConfig,
    *,
    ast: bool = True,
    custom_txn_numbers: bool = True,
) -> Company:
    """A fresh company with QBO's out-of-the-box lists (no change events: nothing was "changed")."""
    company = Company(
        realm_id=realm_id,
        settings=settings,
        created_at=now.timestamp(),
        case_insensitive_names=fidelity.name_case_insensitive,
    )
    ctx = WriteContext(company, fidelity, now)
    acc = Accounting(ctx)
    for name, kind, subtype in _ACCOUNTS:
        acc.create(BY_NAME["Account"], {"Name": name, "AccountType": kind, "AccountSubType": subtype})
    services = id_by_name(company, "Account", "Services")
    for name, price in (("Services", 0), ("Hours", 0)):
        acc.create(
            BY_NAME["Item"],
            {"Name": name, "Type": "Service", "UnitPrice": price, "IncomeAccountRef": {"value": services}},
        )
    for name, days in (("Due on receipt", 0), ("Net 15", 15), ("Net 30", 30), ("Net 60", 60)):
        acc.create(BY_NAME["Term"], {"Name": name, "DueDays": days})
    for name, kind in (
        ("Cash", "NON_CREDIT_CARD"),
        ("Check", "NON_CREDIT_CARD"),
        ("Visa", "CREDIT_CARD"),
        ("MasterCard", "CREDIT_CARD"),
        ("American Express", "CREDIT_CARD"),
        ("Discover", "CREDIT_CARD"),
    ):
        acc.create(BY_NAME["PaymentMethod"], {"Name": name, "Type": kind})
    _seed_tax(acc, company)
    _put_singleton(ctx, "CompanyInfo", _company_info(settings, now.date()))
    _put_singleton(ctx, "Preferences", _preferences(ast, custom_txn_numbers, id_by_name(company, "Term", "Net 30")))
    return company
