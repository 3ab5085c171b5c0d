"""Running a parsed query over stored rows (QBO JSON dicts): filter, order, page, project, count.

One pass over the candidate rows filters them and counts the matches; only the rows that can reach the page are
ordered (``heapq.nsmallest`` when the page ends before the last match), so a query costs O(n) plus a small sort.
Callers holding an index narrow the candidates first with :func:`equality_lookups` and still pass them through
:func:`execute`, which re-applies every condition — so an index only has to return a superset.

Behaviour where the evidence leaves a choice (each an :class:`ExecuteOptions` field):

* ``case_insensitive_strings`` (default True): string ``=``, ``IN``, ranges, ``LIKE`` and ordering ignore case.
  QBO treats names case-insensitively elsewhere (a DisplayName differing only in case is a duplicate), and a
  client looking a customer up by name must not miss it because of case.
* ``active_filter_entities``: for name-list entities QBO returns only active rows unless the WHERE clause
  mentions ``Active`` (clients send ``Active IN (true, false)`` to see both — Airbyte, qbo_api). A row without
  an ``Active`` key counts as active.
* ``default_timezone`` (default UTC): the offset assumed for a datetime written without one, in the query or in
  a row. A *date* compared with a *datetime* property compares the row's calendar date in its own offset, so
  ``MetaData.LastUpdatedTime = '2024-01-31'`` means "updated that day".
* ``projection_always`` (default ``Id``, ``SyncToken``): an explicit projection (``SELECT DisplayName FROM
  Customer``) returns the listed fields plus these, so a row can still be identified and updated. Intuit's blogs
  say projections are unsupported; the grammar accepts them and clients have used them, so the emulator returns
  the fields asked for.

Full rows are the caller's own dicts, not copies: serialise them, do not mutate them.
"""

from __future__ import annotations

import functools
import heapq
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Final

from qbo_emulator.query.model import Condition, Operator, Query
from qbo_emulator.query.schema import NAME_LIST_ENTITIES, FieldKind, Property
from qbo_emulator.query.values import Operand, coerce_row_value, id_key, row_value

__all__ = [
    "DEFAULT_EXECUTE_OPTIONS",
    "ExecuteOptions",
    "QueryResult",
    "equality_lookups",
    "execute",
]

Row = dict[str, Any]
_Predicate = Callable[[Mapping[str, Any]], bool]
_ID_PROPERTY: Final = Property.of("Id", FieldKind.ID)


@dataclass(frozen=True)
class ExecuteOptions:
    """How rows are matched; see the module docstring for why each default was chosen."""

    case_insensitive_strings: bool = True
    active_filter_entities: frozenset[str] = NAME_LIST_ENTITIES
    default_timezone: tzinfo = UTC
    projection_always: tuple[str, ...] = ("Id", "SyncToken")


DEFAULT_EXECUTE_OPTIONS = ExecuteOptions()


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One page of matches (``rows``), how many rows matched in all (``total_count``), and the paging used."""

    entity: str
    rows: list[Row]
    total_count: int
    start_position: int
    max_results: int
    count_only: bool = field(default=False)

    def to_query_response(self) -> dict[str, Any]:
        """QBO's ``QueryResponse`` object for this result.

        ``COUNT(*)`` gives ``{"totalCount": n}``. A page gives the entity key with the rows, ``startPosition``
        and ``maxResults`` — the number of rows *returned*, not the number asked for (node-quickbooks#89).
        An empty page is ``{}``: QBO omits the entity key when nothing matches.
        """
        if self.count_only:
            return {"totalCount": self.total_count}
        if not self.rows:
            return {}
        return {self.entity: self.rows, "startPosition": self.start_position, "maxResults": len(self.rows)}


def execute(query: Query, rows: Iterable[Row], options: ExecuteOptions = DEFAULT_EXECUTE_OPTIONS) -> QueryResult:
    """Run ``query`` over ``rows`` (all stored rows of ``query.entity``, or index-narrowed candidates)."""
    predicates = [_condition_predicate(condition, options) for condition in query.where]
    if query.entity in options.active_filter_entities and not query.mentions("Active"):
        predicates.append(_is_active)
    matched = [row for row in rows if all(predicate(row) for predicate in predicates)]
    result = functools.partial(
        QueryResult,
        entity=query.entity,
        total_count=len(matched),
        start_position=query.start_position,
        max_results=query.max_results,
        count_only=query.count_only,
    )
    if query.count_only:
        return result(rows=[])
    start = query.start_position - 1
    end = start + query.max_results
    key = _sort_key(query, options)
    ordered = heapq.nsmallest(end, matched, key=key) if end < len(matched) else sorted(matched, key=key)
    page = ordered[start:end]
    if not query.full_rows:
        page = [_project(row, (*options.projection_always, *query.projection)) for row in page]
    return result(rows=page)


def equality_lookups(query: Query) -> list[tuple[str, Operand]]:
    """The ``(property, value)`` pairs of the query's ``=`` conditions, for an index lookup.

    Values are typed as the property is (``Id = 5`` gives ``("Id", "5")``). String equality is case-insensitive
    by default, so an index on names must be too — or the caller falls back to a scan.
    """
    return [(c.field, c.operands[0]) for c in query.where if c.op is Operator.EQ]


def _is_active(row: Mapping[str, Any]) -> bool:
    return row.get("Active", True) is not False


_COMPARE: Final[dict[Operator, Callable[[Any, Any], bool]]] = {
    Operator.EQ: operator.eq,
    Operator.IN: operator.eq,
    Operator.LT: operator.lt,
    Operator.GT: operator.gt,
    Operator.LE: operator.le,
    Operator.GE: operator.ge,
}


def _condition_predicate(condition: Condition, options: ExecuteOptions) -> _Predicate:
    prop, tz = condition.prop, options.default_timezone
    fold = options.case_insensitive_strings
    if condition.op is Operator.LIKE:
        pattern = _like_regex(str(condition.operands[0]), fold)

        def like(row: Mapping[str, Any]) -> bool:
            value = coerce_row_value(prop.kind, row_value(row, prop), tz)
            if not isinstance(value, str):
                return False
            return pattern.fullmatch(value.casefold() if fold else value) is not None

        return like
    compare = _COMPARE[condition.op]
    matchers = [_operand_matcher(prop.kind, operand, compare, options) for operand in condition.operands]

    def matches(row: Mapping[str, Any]) -> bool:
        value = coerce_row_value(prop.kind, row_value(row, prop), tz)
        return value is not None and any(matcher(value) for matcher in matchers)

    return matches


def _operand_matcher(
    kind: FieldKind, operand: Operand, compare: Callable[[Any, Any], bool], options: ExecuteOptions
) -> Callable[[Operand], bool]:
    """``compare(row value, operand)`` after bringing both to one comparable form."""
    if kind is FieldKind.DATETIME and not isinstance(operand, datetime):
        assert isinstance(operand, date)
        day = operand
        return lambda value: isinstance(value, datetime) and compare(value.date(), day)
    if isinstance(operand, datetime) and operand.tzinfo is None:
        operand = operand.replace(tzinfo=options.default_timezone)
    project = _text_projector(kind, fold=options.case_insensitive_strings)
    target = project(operand)
    return lambda value: bool(compare(project(value), target))


def _text_projector(kind: FieldKind, *, fold: bool) -> Callable[[Operand], Any]:
    """The comparable form of a value: ids numerically, strings case-folded if asked, the rest as they are."""
    if kind in (FieldKind.ID, FieldKind.REF):
        return lambda value: id_key(str(value).casefold() if fold else str(value))
    if kind in (FieldKind.STRING, FieldKind.EMAIL) and fold:
        return lambda value: str(value).casefold()
    return lambda value: value


@functools.lru_cache(maxsize=1024)
def _like_regex(pattern: str, fold: bool) -> re.Pattern[str]:
    """``%`` matches any run of characters (including none); every other character is literal."""
    source = pattern.casefold() if fold else pattern
    return re.compile(".*".join(re.escape(part) for part in source.split("%")), re.DOTALL)


class _Descending:
    """Inverts the order of a sort component so one ascending sort serves mixed ASC/DESC keys."""

    __slots__ = ("inner",)

    def __init__(self, inner: tuple[Any, ...]) -> None:
        self.inner = inner

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.inner == other.inner

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.inner < self.inner)


def _sort_key(query: Query, options: ExecuteOptions) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """ORDERBY keys in order, then Id ascending — QBO's default order and a deterministic tie-break.

    A missing value sorts before every present one (last under DESC).
    """
    tz = options.default_timezone
    parts: list[tuple[Property, bool, Callable[[Operand], Any]]] = [
        (prop, desc, _text_projector(prop.kind, fold=options.case_insensitive_strings))
        for prop, (_, desc) in zip(query.order_properties, query.order_by, strict=True)
    ]
    parts.append((_ID_PROPERTY, False, _text_projector(FieldKind.ID, fold=False)))

    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        components: list[Any] = []
        for prop, desc, project in parts:
            value = coerce_row_value(prop.kind, row_value(row, prop), tz)
            component = (0,) if value is None else (1, project(value))
            components.append(_Descending(component) if desc else component)
        return tuple(components)

    return key


def _project(row: Mapping[str, Any], names: Iterable[str]) -> Row:
    """A new dict with just the named fields (dotted names give nested dicts), under the row's own spelling."""
    out: Row = {}
    for name in names:
        if name == "*":
            continue
        keys = _resolve_path(row, name.split("."))
        if keys is not None:
            _assign(out, row, keys)
    return out


def _resolve_path(row: Mapping[str, Any], segments: list[str]) -> list[str] | None:
    """The row's actual keys along ``segments`` (matched case-insensitively), or None if any is missing."""
    keys: list[str] = []
    source: Any = row
    for segment in segments:
        if not isinstance(source, Mapping):
            return None
        actual = _find_key(source, segment)
        if actual is None:
            return None
        keys.append(actual)
        source = source[actual]
    return keys


def _assign(out: Row, row: Mapping[str, Any], keys: list[str]) -> None:
    """Copy ``row[k1][k2]…`` into ``out`` without ever writing into one of the row's own nested dicts."""
    target: Row = out
    source: Any = row
    for key in keys[:-1]:
        source = source[key]
        existing = target.get(key)
        if existing is source:
            return  # the whole sub-object is already in the projection
        if not isinstance(existing, dict):
            existing = target[key] = {}
        target = existing
    target[keys[-1]] = source[keys[-1]]


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    folded = name.casefold()
    return next((key for key in mapping if key.casefold() == folded), None)
