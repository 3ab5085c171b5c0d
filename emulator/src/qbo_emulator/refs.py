"""Reference handling shared by every entity: ``{"value": Id, "name": …}`` must point at a live object.

QBO distinguishes a reference to an object that does not exist (2500 "Invalid Reference Id") from one to an
object made inactive (610 "Object Not Found", HTTP 400). Valid references come back with ``name`` filled in.
Also here: the input clean-up every write shares (QBO drops empty strings and ``null`` s).
"""

from __future__ import annotations

from typing import Any

from qbo_emulator import errors
from qbo_emulator.context import WriteContext

__all__ = ["clean_input", "display_of", "filled_ref", "ref_id", "resolve_ref"]

Row = dict[str, Any]


def clean_input(value: Any) -> Any:
    """Drop ``None`` and ``""`` members recursively (client libraries send empty defaults for every field)."""
    if isinstance(value, dict):
        return {k: clean_input(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [clean_input(v) for v in value]
    return value


def ref_id(ref: Any) -> str | None:
    """The Id inside a reference object (``{"value": "12"}``), tolerant of numbers."""
    if isinstance(ref, dict) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def display_of(entity: str, row: Row) -> str:
    """The ``name`` QBO puts in references to ``row``."""
    if entity in {"Customer", "Vendor", "Employee", "TaxAgency"}:
        return str(row.get("DisplayName", ""))
    return str(row.get("FullyQualifiedName") or row.get("Name") or "")


def resolve_ref(ctx: WriteContext, entity: str, ref: Any, element: str, *, require_active: bool = True) -> Row:
    """The live row a reference names (2020 when missing, 2500 when unknown, 610 when inactive)."""
    target = ref_id(ref)
    if target is None:
        raise errors.required_param(element)
    row = ctx.company.get(entity, target)
    if row is None:
        raise errors.invalid_reference(entity, target, element)
    if require_active and row.get("Active") is False:
        raise errors.object_inactive(element)
    return row


def filled_ref(entity: str, row: Row) -> dict[str, str]:
    """A reference to ``row`` with its display name."""
    return {"value": str(row["Id"]), "name": display_of(entity, row)}
