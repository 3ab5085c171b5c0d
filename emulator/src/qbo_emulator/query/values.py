"""Typed values: turning query literals and stored JSON values into things that compare correctly.

QBO types a comparison by the *property*, not by how the literal is written: ``Balance > '0'`` (quoted; the form
Intuit's own examples and many clients use) compares numbers, ``TxnDate >= '2024-01-01'`` compares dates, and
``DocNumber = 1001`` compares text. So a literal is coerced to its property's :class:`FieldKind` once, at parse
time — a literal that cannot be (``Balance > 'abc'``) fails then with 4001, never silently matches nothing — and
every stored value is coerced the same way while a query runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from qbo_emulator.query.errors import QueryError
from qbo_emulator.query.schema import FieldKind, Property

__all__ = [
    "LiteralValue",
    "Operand",
    "coerce_literal",
    "coerce_row_value",
    "id_key",
    "literal_text",
    "row_value",
]

LiteralValue = str | Decimal | bool
"""A literal as written in the query: a string, a number or ``true`` / ``false``."""

Operand = str | Decimal | bool | date | datetime
"""A literal coerced to its property's kind (``str`` for ids, refs, strings and emails)."""

_TEXT_KINDS = frozenset({FieldKind.ID, FieldKind.REF, FieldKind.STRING, FieldKind.EMAIL})


def literal_text(literal: LiteralValue) -> str:
    """The literal as text: ``true``/``false`` for booleans, the digits as written for numbers."""
    if isinstance(literal, bool):
        return "true" if literal else "false"
    return str(literal)


def coerce_literal(prop: Property, literal: LiteralValue, written: str | None = None) -> Operand:
    """``literal`` as a value of ``prop``'s kind; raises a 4001 :class:`QueryError` if it is not one.

    ``written`` is a number's source text: ``DocNumber = 001`` must look for "001", not "1".
    """
    kind = prop.kind
    if kind in _TEXT_KINDS:
        return written if written is not None and isinstance(literal, Decimal) else literal_text(literal)
    if kind is FieldKind.NUMBER:
        number = None if isinstance(literal, bool) else _to_decimal(literal)
        if number is None:
            raise _bad_value(literal, "number", prop)
        return number
    if kind is FieldKind.BOOL:
        flag = literal if isinstance(literal, bool) else _to_bool(literal_text(literal))
        if flag is None:
            raise _bad_value(literal, "boolean", prop)
        return flag
    moment = _parse_moment(literal) if isinstance(literal, str) else None
    if moment is None:
        raise _bad_value(literal, "date", prop)
    if kind is FieldKind.DATE and isinstance(moment, datetime):
        return moment.date()
    return moment


def row_value(row: Mapping[str, object], prop: Property) -> object:
    """The raw JSON value at ``prop.path`` in ``row``, or ``None`` if any step is missing."""
    current: object = row
    for key in prop.path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def coerce_row_value(kind: FieldKind, raw: object, default_tz: tzinfo) -> Operand | None:
    """A stored value as ``kind``, or ``None`` when absent or malformed (it then matches no condition)."""
    if raw is None:
        return None
    if kind in _TEXT_KINDS:
        return _to_text(raw)
    if kind is FieldKind.NUMBER:
        return None if isinstance(raw, bool) else _to_decimal(raw)
    if kind is FieldKind.BOOL:
        return raw if isinstance(raw, bool) else _to_bool(raw) if isinstance(raw, str) else None
    moment = _parse_moment(raw) if isinstance(raw, str) else None
    if kind is FieldKind.DATE:
        return moment.date() if isinstance(moment, datetime) else moment
    if isinstance(moment, datetime):
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=default_tz)
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day, tzinfo=default_tz)
    return None


def id_key(value: str) -> tuple[int, int | str]:
    """Order ids numerically (``"9" < "10"``), and any non-numeric id after every numeric one."""
    if value.isascii() and value.isdigit():
        return (0, int(value))
    return (1, value)


def _to_text(raw: object) -> str | None:
    if isinstance(raw, bool):
        return literal_text(raw)
    if isinstance(raw, str | int | float | Decimal):
        return str(raw)
    return None


def _to_decimal(raw: object) -> Decimal | None:
    if isinstance(raw, Decimal):
        number = raw
    elif isinstance(raw, int | float | str):
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def _to_bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


def _parse_moment(text: str) -> date | datetime | None:
    """An ISO date (``2024-01-31``) or datetime (``2024-01-31T10:00:00-08:00``, ``…Z``, naive)."""
    try:
        if "T" in text or " " in text.strip():
            return datetime.fromisoformat(text.strip())
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _bad_value(literal: LiteralValue, what: str, prop: Property) -> QueryError:
    return QueryError.invalid(f"value '{literal_text(literal)}' is not a valid {what} for property '{prop.name}'")
