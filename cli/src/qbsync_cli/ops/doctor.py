"""Preflight of a QuickBooks company: what in its set-up would break the sync (the seed's "QuickBooks Setup
Requirements").

* **Custom transaction numbers** must be on, or QuickBooks renumbers every invoice (the seed: invoice numbers MUST
  match exactly).
* **Sales tax**: off means Batchly's tax lines have nowhere to go; on without any tax rate is incomplete; automated
  sales tax (AST) is fine — qbsync sends Batchly's tax total so the totals match to the cent.
* **Income accounts**: sales items need one; an item without it (or with an inactive one) fails every invoice that
  uses it; a company without any income account cannot have sales items at all.
* **Items**: a company with no active Product/Service items has nothing for invoices to reference yet.

:func:`diagnose` is pure (plain QuickBooks documents in, findings out); :func:`read_company` gathers the documents
through the QBO client with a token from token-manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qbsync.qbo import QboCompany, QboQuery

__all__ = ["CompanyFacts", "Finding", "diagnose", "read_company"]

Severity = Literal["error", "warning", "ok"]
_SALES_ITEM_TYPES = ("Service", "Inventory", "NonInventory")


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    check: str
    message: str


@dataclass(frozen=True)
class CompanyFacts:
    company_name: str
    preferences: dict[str, Any]
    accounts: Sequence[dict[str, Any]]
    items: Sequence[dict[str, Any]]
    tax_rates: Sequence[dict[str, Any]]


async def read_company(company: QboCompany) -> CompanyFacts:
    """Preferences, company name, accounts, active items and tax rates of one company (read-only queries)."""
    info = await company.company_info()
    preferences = await company.preferences()
    accounts = [row async for row in company.query_all(QboQuery.select("Account"))]
    items = [row async for row in company.query_all(QboQuery.select("Item").where("Active", "=", True))]
    tax_rates = [row async for row in company.query_all(QboQuery.select("TaxRate"))]
    return CompanyFacts(str(info.get("CompanyName", "")), preferences, accounts, items, tax_rates)


def diagnose(facts: CompanyFacts) -> list[Finding]:
    return [
        _custom_numbers(facts.preferences),
        *_sales_tax(facts.preferences, facts.tax_rates),
        *_income_accounts(facts.accounts, facts.items),
    ]


def _custom_numbers(preferences: dict[str, Any]) -> Finding:
    enabled = (preferences.get("SalesFormsPrefs") or {}).get("CustomTxnNumbers")
    if enabled is True:
        return Finding("ok", "custom transaction numbers", "on: QuickBooks keeps Batchly's invoice numbers")
    return Finding(
        "error",
        "custom transaction numbers",
        "off: QuickBooks would renumber every invoice. Turn on Settings → Sales → Custom transaction numbers.",
    )


def _sales_tax(preferences: dict[str, Any], tax_rates: Sequence[dict[str, Any]]) -> list[Finding]:
    tax = preferences.get("TaxPrefs") or {}
    if not tax.get("UsingSalesTax"):
        return [
            Finding(
                "warning",
                "sales tax",
                "not set up: invoices with tax cannot carry it. "
                "Set up sales tax in Settings → Taxes (if you charge it).",
            )
        ]
    findings: list[Finding] = []
    active_rates = [r for r in tax_rates if r.get("Active", True)]
    if not active_rates:
        findings.append(
            Finding("warning", "sales tax", "on, but no active tax rate: add the rates of your jurisdictions.")
        )
    if tax.get("PartnerTaxEnabled"):
        findings.append(
            Finding(
                "ok",
                "sales tax",
                "automated sales tax on: qbsync sends Batchly's tax total so QuickBooks totals match to the cent.",
            )
        )
    elif active_rates:
        findings.append(Finding("ok", "sales tax", f"on, {len(active_rates)} active tax rate(s)"))
    return findings


def _income_accounts(accounts: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]]) -> list[Finding]:
    income = {str(a["Id"]): a for a in accounts if a.get("AccountType") == "Income"}
    active_income = {key for key, a in income.items() if a.get("Active", True)}
    if not active_income:
        return [Finding("error", "income accounts", "none active: create an Income account for your sales.")]
    sales_items = [i for i in items if i.get("Type") in _SALES_ITEM_TYPES and i.get("Active", True)]
    if not sales_items:
        return [
            Finding(
                "warning",
                "items",
                "no active Product/Service items: your accountant creates the items Batchly sells, then run "
                "`qbsync sync items ORG`.",
            )
        ]
    broken = [i for i in sales_items if str((i.get("IncomeAccountRef") or {}).get("value", "")) not in active_income]
    if broken:
        names = ", ".join(sorted(str(i.get("Name", i.get("Id"))) for i in broken)[:20])
        return [
            Finding(
                "error",
                "income accounts",
                f"{len(broken)} item(s) without an active income account: {names}. Assign one in QuickBooks.",
            )
        ]
    return [Finding("ok", "income accounts", f"{len(sales_items)} active item(s), each with an active income account")]
