"""Sales tax on sales transactions: automated sales tax (AST) and the manual, non-AST path (facts §5 Tax).

* AST companies (``Preferences.TaxPrefs.PartnerTaxEnabled``) pick the tax code from the ship-to state (else the
  bill-to, else the company's state) and ignore the ``TxnTaxCodeRef`` sent, unless the client pins the amount
  with ``TxnTaxDetail.TotalTax``, which is honoured and prorated across the code's rates.
* Non-AST companies honour what is sent: ``TotalTax`` if given, else the rates of ``TxnTaxCodeRef``, else none.

Rounding (UNCERTAIN in QBO, configurable): by default each taxable line's tax is rounded half-up to the cent
and the results summed, so a client that rounds ``subtotal * rate`` once can be a cent off.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qbo_emulator.context import WriteContext
from qbo_emulator.money import ZERO, as_number, dec, round_cents
from qbo_emulator.refs import filled_ref, ref_id, resolve_ref

__all__ = ["TaxResult", "compute_tax", "partner_tax_enabled"]

Row = dict[str, Any]


@dataclass(frozen=True)
class TaxResult:
    detail: Row
    total: Decimal


def partner_tax_enabled(ctx: WriteContext) -> bool:
    """Whether the company runs automated sales tax."""
    prefs = ctx.company.get("Preferences", "1") or {}
    return bool(prefs.get("TaxPrefs", {}).get("PartnerTaxEnabled", False))


def _region(ctx: WriteContext, txn: Row, customer: Row) -> str:
    for address in (txn.get("ShipAddr"), customer.get("ShipAddr"), customer.get("BillAddr")):
        if isinstance(address, dict) and address.get("CountrySubDivisionCode"):
            return str(address["CountrySubDivisionCode"]).upper()
    return ctx.company.settings.state.upper()


def _rates(ctx: WriteContext, code: Row) -> list[tuple[Row, Decimal]]:
    details = code.get("SalesTaxRateList", {}).get("TaxRateDetail", [])
    rates: list[tuple[Row, Decimal]] = []
    for detail in details:
        rate_row = ctx.company.get("TaxRate", ref_id(detail.get("TaxRateRef")) or "")
        if rate_row is not None:
            rates.append((rate_row, dec(rate_row.get("RateValue"))))
    return rates


def _computed_lines(ctx: WriteContext, rates: list[tuple[Row, Decimal]], bases: list[Decimal]) -> list[Row]:
    lines: list[Row] = []
    net = sum(bases, ZERO)
    for rate_row, rate in rates:
        if ctx.fidelity.tax_rounding == "per_line_half_up":
            amount = sum((round_cents(base * rate / 100) for base in bases), ZERO)
        else:
            amount = round_cents(net * rate / 100)
        lines.append(_tax_line(rate_row, rate, amount, net))
    return lines


def _prorated_lines(rates: list[tuple[Row, Decimal]], total: Decimal, net: Decimal) -> list[Row]:
    rate_sum = sum((rate for _, rate in rates), ZERO)
    lines: list[Row] = []
    remaining = total
    for index, (rate_row, rate) in enumerate(rates):
        share = remaining if index == len(rates) - 1 else round_cents(total * rate / rate_sum) if rate_sum else ZERO
        remaining -= share
        lines.append(_tax_line(rate_row, rate, share, net))
    return lines


def _tax_line(rate_row: Row, rate: Decimal, amount: Decimal, net: Decimal) -> Row:
    return {
        "Amount": as_number(amount),
        "DetailType": "TaxLineDetail",
        "TaxLineDetail": {
            "TaxRateRef": filled_ref("TaxRate", rate_row),
            "PercentBased": True,
            "TaxPercent": as_number(rate),
            "NetAmountTaxable": as_number(net),
        },
    }


def _detail(code: Row | None, lines: list[Row], total: Decimal) -> Row:
    detail: Row = {}
    if code is not None:
        detail["TxnTaxCodeRef"] = {"value": str(code["Id"])}
    detail["TotalTax"] = as_number(total)
    if lines:
        detail["TaxLine"] = lines
    return detail


def compute_tax(ctx: WriteContext, txn: Row, customer: Row, bases: list[Decimal]) -> TaxResult:
    """The ``TxnTaxDetail`` of a sales transaction from its taxable line amounts (after discount)."""
    raw = txn.get("TxnTaxDetail")
    sent: Row = raw if isinstance(raw, dict) else {}
    pinned = dec(sent["TotalTax"]) if "TotalTax" in sent else None
    net = sum(bases, ZERO)
    if partner_tax_enabled(ctx):
        code_id = ctx.company.tax_regions.get(_region(ctx, txn, customer))
        code = ctx.company.get("TaxCode", code_id) if code_id else None
    elif "TxnTaxCodeRef" in sent:
        code = resolve_ref(ctx, "TaxCode", sent["TxnTaxCodeRef"], "TxnTaxDetail.TxnTaxCodeRef")
    else:
        code = None
    rates = _rates(ctx, code) if code is not None else []
    if pinned is not None:
        total = round_cents(pinned)
        return TaxResult(_detail(code, _prorated_lines(rates, total, net) if rates else [], total), total)
    if customer.get("Taxable") is False or not rates:
        return TaxResult(_detail(code, [], ZERO), ZERO)
    lines = _computed_lines(ctx, rates, bases)
    total = sum((dec(line["Amount"]) for line in lines), ZERO)
    return TaxResult(_detail(code, lines, total), total)
