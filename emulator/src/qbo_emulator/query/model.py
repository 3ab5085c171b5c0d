"""The parsed form of a query: immutable, hashable values, safe to share from the parse cache."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from qbo_emulator.query.schema import FieldKind, Property
from qbo_emulator.query.values import LiteralValue, Operand

__all__ = ["Condition", "Operator", "Query"]


class Operator(enum.StrEnum):
    """The comparison operators QBO supports; conditions are joined by AND only."""

    EQ = "="
    LT = "<"
    GT = ">"
    LE = "<="
    GE = ">="
    IN = "IN"
    LIKE = "LIKE"


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op values``: ``values`` as written, ``operands`` coerced to the property's kind (``prop``).

    ``field`` is the canonical property name (``MetaData.LastUpdatedTime`` even if the query wrote
    ``metadata.lastupdatedtime``). ``values`` has one item except for ``IN``.
    """

    field: str
    op: Operator
    values: tuple[LiteralValue, ...]
    operands: tuple[Operand, ...]
    prop: Property

    @property
    def value(self) -> LiteralValue:
        """The single literal of a non-``IN`` condition (the first one of an ``IN`` list)."""
        return self.values[0]

    @property
    def kind(self) -> FieldKind:
        return self.prop.kind


@dataclass(frozen=True, slots=True)
class Query:
    """A validated QBO query.

    ``projection`` is ``("*",)`` for ``SELECT *``, ``("*", "Sku")`` for ``SELECT *, Sku``, the listed names for
    ``SELECT Id, DisplayName`` and empty for ``COUNT(*)``. ``order_by`` holds ``(field, descending)`` pairs;
    ``start_position`` is 1-based.
    """

    entity: str
    count_only: bool
    projection: tuple[str, ...]
    where: tuple[Condition, ...]
    order_by: tuple[tuple[str, bool], ...]
    start_position: int
    max_results: int
    order_properties: tuple[Property, ...] = field(default=(), compare=False, repr=False)

    @property
    def full_rows(self) -> bool:
        """True when rows come back whole (``*`` selected); False for an explicit projection."""
        return "*" in self.projection

    def mentions(self, property_name: str) -> bool:
        """Whether any WHERE condition is on ``property_name`` (canonical spelling)."""
        return any(condition.field == property_name for condition in self.where)
