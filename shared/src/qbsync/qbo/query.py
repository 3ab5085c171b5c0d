r"""A builder for QBO's query language that never concatenates a value into the text raw.

QBO strings are single-quoted with backslash escapes (``'O\'Brien'``, ``'C:\\path'``); everything else in a query
is a keyword, a property name, an operator or a literal the builder renders itself. Entity and property names are
checked against a strict pattern and operators against QBO's list, so no argument can change a query's structure.

    >>> print(QboQuery.select("Customer").where("DisplayName", "=", "O'Brien"))
    SELECT * FROM Customer WHERE DisplayName = 'O\'Brien'

``LIKE`` patterns use ``%`` as the wildcard and QBO offers no way to escape it: a ``%`` in a LIKE value is always
a wildcard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

__all__ = ["Condition", "Operator", "QboQuery", "QueryValue", "escape_string", "render_value"]

Operator = Literal["=", "<", ">", "<=", ">=", "IN", "LIKE"]
Scalar = str | bool | int | Decimal | date | datetime
QueryValue = Scalar | Sequence[Scalar]

_OPERATORS: frozenset[str] = frozenset({"=", "<", ">", "<=", ">=", "IN", "LIKE"})
_ENTITY = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
_PROPERTY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}(\.[A-Za-z][A-Za-z0-9]{0,63}){0,3}")
MAX_RESULTS_LIMIT = 1000


def escape_string(value: str) -> str:
    """Escape a Python string for the inside of a QBO quoted literal: backslash first, then the apostrophe."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def render_value(value: Scalar) -> str:
    """Render one literal. ``bool`` before ``int`` (bool is an int); floats are refused (money is Decimal)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{escape_string(value)}'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("query numbers must be finite")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("query datetimes must be timezone-aware (QBO compares instants)")
        return f"'{value.isoformat()}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    raise TypeError(f"unsupported query value type {type(value).__name__}")


@dataclass(frozen=True)
class Condition:
    """``property op value``; conditions of a query are joined with AND (QBO has no OR)."""

    prop: str
    op: Operator
    value: QueryValue

    def render(self) -> str:
        if self.op == "IN":
            if isinstance(self.value, str | bytes) or not isinstance(self.value, Sequence):
                raise TypeError("IN needs a sequence of values")
            if not self.value:
                raise ValueError("IN needs at least one value")
            return f"{self.prop} IN ({', '.join(render_value(v) for v in self.value)})"
        if not isinstance(self.value, str | bool | int | Decimal | date):
            raise TypeError(f"{self.op} needs a single value")
        if self.op == "LIKE" and not isinstance(self.value, str):
            raise TypeError("LIKE needs a string pattern")
        return f"{self.prop} {self.op} {render_value(self.value)}"


@dataclass(frozen=True)
class QboQuery:
    """An immutable query; every method returns a new one. Build with :meth:`select`."""

    entity: str
    conditions: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    start: int | None = None
    limit: int | None = None
    count_only: bool = False

    @classmethod
    def select(cls, entity: str) -> QboQuery:
        if not _ENTITY.fullmatch(entity):
            raise ValueError(f"not a QBO entity name: {entity!r}")
        return cls(entity=entity)

    def where(self, prop: str, op: Operator, value: QueryValue) -> QboQuery:
        _check_property(prop)
        op_upper = op.upper()
        if op_upper not in _OPERATORS:
            raise ValueError(f"QBO has no operator {op!r}")
        condition = Condition(prop, op_upper, value)  # type: ignore[arg-type]  # checked against _OPERATORS
        condition.render()  # fail now, at the call that built it, not later when the query is sent
        return replace(self, conditions=(*self.conditions, condition))

    def order_by(self, prop: str, *, descending: bool = False) -> QboQuery:
        _check_property(prop)
        return replace(self, order=(*self.order, (prop, descending)))

    def start_position(self, position: int) -> QboQuery:
        if position < 1:
            raise ValueError("STARTPOSITION is 1-based")
        return replace(self, start=position)

    def max_results(self, count: int) -> QboQuery:
        if not 1 <= count <= MAX_RESULTS_LIMIT:
            raise ValueError(f"MAXRESULTS must be 1..{MAX_RESULTS_LIMIT}")
        return replace(self, limit=count)

    def count(self) -> QboQuery:
        """The ``COUNT(*)`` form of this query (ordering and paging dropped: they do not change a count)."""
        return replace(self, count_only=True, order=(), start=None, limit=None)

    def render(self) -> str:
        parts = ["SELECT", "COUNT(*)" if self.count_only else "*", "FROM", self.entity]
        if self.conditions:
            parts += ["WHERE", " AND ".join(c.render() for c in self.conditions)]
        if self.order:
            parts += ["ORDERBY", ", ".join(f"{p} DESC" if desc else p for p, desc in self.order)]
        if self.start is not None:
            parts += ["STARTPOSITION", str(self.start)]
        if self.limit is not None:
            parts += ["MAXRESULTS", str(self.limit)]
        return " ".join(parts)

    def __str__(self) -> str:
        return self.render()


def _check_property(prop: str) -> None:
    if not _PROPERTY.fullmatch(prop):
        raise ValueError(f"not a QBO property name: {prop!r}")
