"""``POST /taxservice/taxcode``: the only way to create TaxCode and TaxRate rows (facts §2 URL table).

Body ``{"TaxCode": name, "TaxRateDetails": [{"TaxRateName", "RateValue", "TaxAgencyId", "TaxApplicableOn"}]}``;
the answer is the same shape with the new ids (``TaxCodeId``, ``TaxRateId``), not an entity wrapper.
"""

from __future__ import annotations

from typing import Any

from qbo_emulator import errors
from qbo_emulator.accounting import Accounting
from qbo_emulator.entities import BY_NAME
from qbo_emulator.money import as_number, dec
from qbo_emulator.refs import resolve_ref

__all__ = ["create_tax_code", "insert_readonly"]

Row = dict[str, Any]


def insert_readonly(accounting: Accounting, entity: str, row: Row) -> Row:
    """Store a TaxRate/TaxCode row (not creatable through the entity endpoints) with its stamps."""
    company, ctx = accounting.company, accounting.ctx
    row["Id"] = company.next_id(BY_NAME[entity])
    stamp = ctx.stamp
    row.update(SyncToken="0", domain="QBO", sparse=False, MetaData={"CreateTime": stamp, "LastUpdatedTime": stamp})
    company.put(entity, row, ctx.now.timestamp())
    ctx.emit(entity, row["Id"], "Create")
    return row


def _create_rate(accounting: Accounting, detail: Row) -> tuple[Row, Row]:
    """One TaxRate from a ``TaxRateDetails`` item: ``(reference for the code, item of the answer)``."""
    agency = resolve_ref(accounting.ctx, "TaxAgency", {"value": detail.get("TaxAgencyId")}, "TaxAgencyId")
    name = str(detail.get("TaxRateName") or "")
    if not name:
        raise errors.required_param("TaxRateName")
    rate = insert_readonly(
        accounting,
        "TaxRate",
        {
            "Name": name,
            "Active": True,
            "RateValue": as_number(dec(detail.get("RateValue"))),
            "AgencyRef": {"value": agency["Id"]},
            "SpecialTaxType": "NONE",
            "DisplayType": "ReadOnly",
        },
    )
    reference = {"TaxRateRef": {"value": rate["Id"], "name": name}, "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0}
    answer = {
        "TaxRateName": name,
        "TaxRateId": rate["Id"],
        "RateValue": rate["RateValue"],
        "TaxAgencyId": agency["Id"],
        "TaxApplicableOn": detail.get("TaxApplicableOn", "Sales"),
    }
    return reference, answer


def create_tax_code(accounting: Accounting, body: Row) -> Row:
    """Create the rates and the code that groups them; returns the TaxService answer."""
    name = body.get("TaxCode")
    if not isinstance(name, str) or not name.strip():
        raise errors.required_param("TaxCode")
    if any(code.get("Name") == name for code in accounting.company.tables["TaxCode"].values()):
        raise errors.duplicate_name()
    details = body.get("TaxRateDetails")
    if not isinstance(details, list) or not details:
        raise errors.required_param("TaxRateDetails")
    created = [_create_rate(accounting, detail) for detail in details]
    references = [reference for reference, _ in created]
    code = insert_readonly(
        accounting,
        "TaxCode",
        {
            "Name": name,
            "Active": True,
            "Taxable": True,
            "TaxGroup": len(references) > 1,
            "SalesTaxRateList": {"TaxRateDetail": references},
            "PurchaseTaxRateList": {"TaxRateDetail": []},
        },
    )
    return {"TaxCode": name, "TaxCodeId": code["Id"], "TaxRateDetails": [answer for _, answer in created]}
