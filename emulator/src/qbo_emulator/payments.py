"""Payments: applying money to invoices and credit memos, and undoing it (facts §5 Payment).

A payment's lines link transactions (``LinkedTxn: [{TxnId, TxnType}]``). Applying a line reduces the invoice's
``Balance`` (or the credit memo's ``RemainingCredit``) and links both ways: the payment line names the invoice
and the invoice's ``LinkedTxn`` names the payment. The linked transaction changes as QBO changes it: its
SyncToken moves on, so a client holding the old one gets 5010. What is not applied is ``UnappliedAmt``.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any, Final

from qbo_emulator import errors
from qbo_emulator.context import WriteContext
from qbo_emulator.errors import QboFault
from qbo_emulator.money import ZERO, as_number, dec, round_cents
from qbo_emulator.refs import filled_ref, ref_id, resolve_ref

__all__ = ["applied_to", "apply_links", "build_payment_row", "payment_links", "unlink_all", "void_payment_row"]

Row = dict[str, Any]
Key = tuple[str, str]

_LINKABLE: Final = frozenset({"Invoice", "CreditMemo"})
_USD: Final = {"value": "USD", "name": "United States Dollar"}


def payment_links(payment: Row | None) -> dict[Key, Decimal]:
    """``(TxnType, TxnId) -> amount`` applied by a payment (zero amounts are no application)."""
    links: dict[Key, Decimal] = defaultdict(lambda: ZERO)
    for line in (payment or {}).get("Line", []):
        linked = line.get("LinkedTxn") or []
        if linked:
            links[(str(linked[0].get("TxnType")), str(linked[0].get("TxnId")))] += dec(line.get("Amount"))
    return {key: amount for key, amount in links.items() if amount != 0}


def applied_to(ctx: WriteContext, entity: str, txn: Row) -> Decimal:
    """How much payments have applied to an invoice or credit memo."""
    total = ZERO
    for link in txn.get("LinkedTxn", []):
        if link.get("TxnType") == "Payment":
            payment = ctx.company.get("Payment", str(link.get("TxnId")))
            total += payment_links(payment).get((entity, str(txn["Id"])), ZERO)
    return total


def _link_error(ctx: WriteContext, detail: str) -> QboFault:
    return QboFault("620", "Txn ID Cannot Be Linked", f"TxnID Cannot Be Linked : {detail}", "Line.LinkedTxn")


def _normalise_lines(ctx: WriteContext, row: Row, customer_id: str) -> list[Row]:
    lines: list[Row] = []
    for source in row.get("Line") or []:
        if not isinstance(source, dict):
            continue
        if "Amount" not in source:
            raise errors.required_param("Line.Amount")
        links = []
        for link in source.get("LinkedTxn") or []:
            txn_type, txn_id = str(link.get("TxnType")), str(link.get("TxnId"))
            if txn_type not in _LINKABLE:
                raise _link_error(ctx, f"A payment cannot be linked to a {txn_type}.")
            target = ctx.company.get(txn_type, txn_id)
            if target is None:
                raise errors.invalid_reference(txn_type, txn_id, "Line.LinkedTxn.TxnId")
            if ref_id(target.get("CustomerRef")) != customer_id:
                if ctx.fidelity.payment_foreign_link == "error":
                    raise _link_error(ctx, f"{txn_type} {txn_id} belongs to another customer.")
                continue
            links.append({"TxnId": txn_id, "TxnType": txn_type})
        if source.get("LinkedTxn") and not links:
            continue
        lines.append({"Amount": as_number(round_cents(dec(source["Amount"]))), "LinkedTxn": links})
    return lines


def build_payment_row(ctx: WriteContext, fields: Row, old: Row | None) -> Row:
    """The stored form of a payment; validates that every applied amount is open on its target."""
    row = {k: v for k, v in fields.items() if k != "UnappliedAmt"}
    customer = resolve_ref(ctx, "Customer", row.get("CustomerRef"), "CustomerRef")
    row["CustomerRef"] = filled_ref("Customer", customer)
    if "TotalAmt" not in row:
        raise errors.required_param("TotalAmt")
    total = round_cents(dec(row["TotalAmt"]))
    if total < 0:
        raise errors.validation("The payment amount cannot be negative.", "TotalAmt")
    row.setdefault("TxnDate", ctx.today)
    if "PaymentMethodRef" in row:
        method = resolve_ref(ctx, "PaymentMethod", row["PaymentMethodRef"], "PaymentMethodRef")
        row["PaymentMethodRef"] = filled_ref("PaymentMethod", method)
    deposit = row.get("DepositToAccountRef") or _undeposited_funds(ctx)
    if deposit is not None:
        account = resolve_ref(ctx, "Account", deposit, "DepositToAccountRef")
        row["DepositToAccountRef"] = filled_ref("Account", account)
    row["Line"] = _normalise_lines(ctx, row, customer["Id"])
    applied = _check_open_amounts(ctx, row, old)
    if applied > total:
        raise errors.validation(
            f"The amounts applied ({as_number(applied)}) exceed the payment amount ({as_number(total)}).",
            "TotalAmt",
        )
    row.update(TotalAmt=as_number(total), UnappliedAmt=as_number(total - applied), CurrencyRef=dict(_USD))
    row.setdefault("ProcessPayment", False)
    return row


def _undeposited_funds(ctx: WriteContext) -> Row | None:
    for account in ctx.company.tables["Account"].values():
        if account.get("AccountSubType") == "UndepositedFunds" and account.get("Active", True):
            return {"value": account["Id"]}
    return None


def _check_open_amounts(ctx: WriteContext, row: Row, old: Row | None) -> Decimal:
    previous = payment_links(old)
    net = ZERO
    for (txn_type, txn_id), amount in payment_links(row).items():
        target = ctx.company.get(txn_type, txn_id) or {}
        field = "Balance" if txn_type == "Invoice" else "RemainingCredit"
        open_amount = dec(target.get(field)) + previous.get((txn_type, txn_id), ZERO)
        if amount > open_amount:
            raise errors.validation(
                f"The amount applied to {txn_type} {txn_id} ({as_number(amount)}) exceeds its open "
                f"amount ({as_number(open_amount)}).",
                "Line.Amount",
            )
        net += amount if txn_type == "Invoice" else -amount
    return net


def apply_links(ctx: WriteContext, payment: Row, old: Row | None) -> None:
    """Move the linked transactions' open amounts and back-links from ``old`` to ``payment``."""
    before, after = payment_links(old), payment_links(payment)
    for key in sorted(set(before) | set(after)):
        delta = after.get(key, ZERO) - before.get(key, ZERO)
        if delta == 0:
            continue
        txn_type, txn_id = key
        stored = ctx.company.get(txn_type, txn_id)
        if stored is None:
            continue
        target = dict(stored)
        target["Balance"] = as_number(dec(target.get("Balance")) - delta)
        if txn_type == "CreditMemo":
            target["RemainingCredit"] = as_number(dec(target.get("RemainingCredit")) - delta)
        links = [ln for ln in target.get("LinkedTxn", []) if ln.get("TxnId") != payment["Id"]]
        if key in after:
            links.append({"TxnId": payment["Id"], "TxnType": "Payment"})
        target["LinkedTxn"] = links
        ctx.touch(txn_type, target)


def void_payment_row(row: Row) -> Row:
    """A voided payment: amounts zeroed (so nothing stays applied), PrivateNote "Voided"."""
    lines = [dict(line, Amount=0) for line in row.get("Line", [])]
    return dict(row, Line=lines, TotalAmt=0, UnappliedAmt=0, PrivateNote="Voided")


def unlink_all(ctx: WriteContext, entity: str, txn: Row) -> None:
    """Before a void or delete of an invoice/credit memo: its payments drop the link (money is unapplied)."""
    for link in txn.get("LinkedTxn", []):
        if link.get("TxnType") != "Payment":
            continue
        stored = ctx.company.get("Payment", str(link.get("TxnId")))
        if stored is None:
            continue
        payment = dict(stored)
        payment["Line"] = [
            line
            for line in stored.get("Line", [])
            if not any(
                lt.get("TxnType") == entity and str(lt.get("TxnId")) == txn["Id"] for lt in line.get("LinkedTxn", [])
            )
        ]
        net = sum(
            (amount if kind == "Invoice" else -amount for (kind, _), amount in payment_links(payment).items()),
            ZERO,
        )
        payment["UnappliedAmt"] = as_number(dec(payment.get("TotalAmt")) - net)
        ctx.touch("Payment", payment)
