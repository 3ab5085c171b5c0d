"""The query endpoint and CDC over a company's rows.

Queries are parsed and evaluated by ``qbo_emulator.query``; this module feeds it the company's rows (narrowed
through the Id and DisplayName indexes when the WHERE clause allows) and turns its ``QueryError`` into QBO's
``Fault``. CDC (facts §2) returns, per entity, what changed at or after ``changedSince`` — oldest first, at most
1000 objects, deleted objects as ``{"Id", "status": "Deleted", "MetaData"}`` — and refuses windows older than 30
days with the text QBO uses.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from qbo_emulator import errors
from qbo_emulator.clock import parse_qbo_datetime
from qbo_emulator.config import FidelityConfig
from qbo_emulator.entities import BY_NAME, NAME_UNIQUE_GROUP
from qbo_emulator.errors import QboFault
from qbo_emulator.query import ExecuteOptions, Query, QueryError, equality_lookups, execute, parse_query
from qbo_emulator.store import Company

__all__ = ["run_cdc", "run_query"]

Row = dict[str, Any]

_CDC_EXCLUDED: Final = frozenset({"JournalCode", "TaxAgency", "TimeActivity", "TaxCode", "TaxRate"})


def _fault(error: QueryError) -> QboFault:
    return QboFault(error.code, error.message, error.detail)


def _candidates(company: Company, query: Query) -> list[Row]:
    table = company.tables.get(query.entity)
    if table is None:
        return []
    for field, value in equality_lookups(query):
        if field == "Id":
            row = table.get(str(value))
            return [row] if row is not None else []
        if field == "DisplayName" and query.entity in NAME_UNIQUE_GROUP and company.case_insensitive_names:
            holder = company.name_holder(company.name_key(query.entity, str(value)))
            if holder is None or holder[0] != query.entity:
                return []
            row = table.get(holder[1])
            return [row] if row is not None else []
    return list(table.values())


def run_query(company: Company, text: str) -> Row:
    """``QueryResponse`` for one query text (raises the 4000/4001 fault for bad queries)."""
    try:
        query = parse_query(text.strip())
    except QueryError as exc:
        raise _fault(exc) from exc
    options = ExecuteOptions(default_timezone=company.zone)
    try:
        result = execute(query, _candidates(company, query), options)
    except QueryError as exc:
        raise _fault(exc) from exc
    return result.to_query_response()


def _cdc_entities(raw: str | None) -> list[str]:
    if not raw or not raw.strip():
        raise errors.required_param("entities")
    names: list[str] = []
    lookup = {name.lower(): name for name in BY_NAME}
    for part in raw.split(","):
        name = lookup.get(part.strip().lower())
        if name is None or name in _CDC_EXCLUDED or not BY_NAME[name].cdc:
            raise errors.unsupported_operation(f"Operation cdc is not supported for entity {part.strip()}.")
        if name not in names:
            names.append(name)
    return names


def run_cdc(
    company: Company, entities: str | None, changed_since: str | None, now: datetime, fidelity: FidelityConfig
) -> list[Row]:
    """The ``CDCResponse`` list for one request."""
    names = _cdc_entities(entities)
    if not changed_since:
        raise errors.required_param("changedSince")
    try:
        since = parse_qbo_datetime(changed_since, company.zone)
    except ValueError as exc:
        raise errors.validation(f"Invalid changedSince value {changed_since}.", "changedSince") from exc
    if since < now - timedelta(days=fidelity.cdc_lookback_days):
        raise errors.unsupported_operation(
            f"Operation cdc with changedSince date {changed_since} which is older than fixed days is not supported."
        )
    cutoff = since.timestamp()
    responses = [_cdc_entity(company, name, cutoff, fidelity.cdc_max_objects) for name in names]
    return [{"QueryResponse": responses}]


def _cdc_entity(company: Company, entity: str, cutoff: float, limit: int) -> Row:
    stamps = company.updated_at[entity]
    changed: list[tuple[float, int, Row]] = [
        (stamp, _id_order(row_id), company.tables[entity][row_id])
        for row_id, stamp in stamps.items()
        if stamp >= cutoff and row_id in company.tables[entity]
    ]
    for tomb in company.tombstones:
        if tomb.entity == entity and tomb.deleted_at >= cutoff:
            deleted = {
                "domain": "QBO",
                "status": "Deleted",
                "Id": tomb.id,
                "MetaData": {"LastUpdatedTime": tomb.last_updated},
            }
            changed.append((tomb.deleted_at, _id_order(tomb.id), deleted))
    if not changed:
        return {}
    changed.sort(key=lambda item: (item[0], item[1]))
    page = [row for _, _, row in changed[:limit]]
    return {entity: page, "startPosition": 1, "maxResults": len(page)}


def _id_order(row_id: str) -> int:
    return int(row_id) if row_id.isdigit() else 0
