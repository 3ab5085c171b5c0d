"""QBO's query language for the emulator: a pure parser and evaluator (no I/O, no web framework).

    q = parse_query("select * from Customer where DisplayName = 'O\\'Brien' maxresults 10")
    result = execute(q, stored_customers)           # .rows (the page), .total_count, .to_query_response()

``parse_query`` raises :class:`QueryError` — ``.code`` "4000" with ``Error parsing query`` for lexical and
syntax errors, "4001" with ``Invalid query`` for an unknown entity or property or an out-of-range paging value —
carrying QBO's own detail text, ready for a ``Fault`` body via :meth:`QueryError.to_fault_error`.

Where the evidence about QBO is uncertain the behaviour is an option with a documented default:
:class:`ParseOptions` (entity / property case sensitivity, STARTPOSITION 0, MAXRESULTS limits) and
:class:`ExecuteOptions` (case-insensitive strings, active-only name lists, time zone for naive datetimes,
fields always returned by a projection).
"""

from qbo_emulator.query.errors import INVALID_QUERY, PARSE_ERROR, QueryError
from qbo_emulator.query.evaluate import (
    DEFAULT_EXECUTE_OPTIONS,
    ExecuteOptions,
    QueryResult,
    equality_lookups,
    execute,
)
from qbo_emulator.query.model import Condition, Operator, Query
from qbo_emulator.query.parser import DEFAULT_PARSE_OPTIONS, ParseOptions, parse_query
from qbo_emulator.query.schema import (
    DEFAULT_CATALOG,
    NAME_LIST_ENTITIES,
    EntityCatalog,
    EntitySchema,
    FieldKind,
    Property,
)
from qbo_emulator.query.values import LiteralValue, Operand

__all__ = [
    "DEFAULT_CATALOG",
    "DEFAULT_EXECUTE_OPTIONS",
    "DEFAULT_PARSE_OPTIONS",
    "INVALID_QUERY",
    "NAME_LIST_ENTITIES",
    "PARSE_ERROR",
    "Condition",
    "EntityCatalog",
    "EntitySchema",
    "ExecuteOptions",
    "FieldKind",
    "LiteralValue",
    "Operand",
    "Operator",
    "ParseOptions",
    "Property",
    "Query",
    "QueryError",
    "QueryResult",
    "equality_lookups",
    "execute",
    "parse_query",
]
