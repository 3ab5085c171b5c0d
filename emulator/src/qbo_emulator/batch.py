"""``POST /batch``: up to 30 independent operations in one request (facts §2 Batch).

Items run in order against live data, each in its own operation context, and succeed or fail on their own:
the response lists, per ``bId``, the entity, a ``QueryResponse`` or a ``Fault``. ``operation`` is create,
update or delete; ``optionsData`` carries ``void`` (with ``update``) and ``allowduplicatedocnum``. More than 30
items is a 1040 fault for the whole request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qbo_emulator import errors
from qbo_emulator.accounting import Accounting
from qbo_emulator.context import WriteContext
from qbo_emulator.entities import BY_NAME, EntitySpec
from qbo_emulator.errors import QboFault
from qbo_emulator.queries import run_query
from qbo_emulator.store import Company

__all__ = ["run_batch"]

Row = dict[str, Any]


def _entity_of(item: Row) -> tuple[EntitySpec, Row]:
    for key, value in item.items():
        spec = BY_NAME.get(key)
        if spec is not None and isinstance(value, dict):
            return spec, value
    raise errors.required_param("BatchItemRequest entity")


def _run_item(
    company: Company, item: Row, new_context: Callable[[bool], WriteContext]
) -> tuple[Row, WriteContext | None]:
    if "Query" in item:
        return {"QueryResponse": run_query(company, str(item["Query"]))}, None
    options = str(item.get("optionsData") or "").lower()
    operation = str(item.get("operation") or "").lower()
    spec, body = _entity_of(item)
    ctx = new_context("allowduplicatedocnum" in options)
    accounting = Accounting(ctx)
    if operation == "create":
        row = accounting.create(spec, body)
    elif operation == "update" and "void" in options:
        row = accounting.void(spec, body)
    elif operation == "update":
        row = accounting.update(spec, body)
    elif operation == "delete":
        row = accounting.delete(spec, body)
    else:
        raise errors.unsupported_operation(f"Operation {operation or '(none)'} is not supported.")
    return {spec.name: row}, ctx


def run_batch(
    company: Company,
    body: Any,
    max_items: int,
    new_context: Callable[[bool], WriteContext],
    commit: Callable[[WriteContext], None],
) -> list[Row]:
    """The ``BatchItemResponse`` list; each successful write is committed (events, state file) at once."""
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise errors.required_param("BatchItemRequest")
    if len(items) > max_items:
        raise QboFault(
            "1040",
            "Batch size exceeds allowed limit",
            f"The batch size ({len(items)}) is greater than the maximum allowed size ({max_items}).",
        )
    responses: list[Row] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        outcome: Row = {"bId": str(item.get("bId", ""))}
        try:
            result, ctx = _run_item(company, item, new_context)
        except QboFault as fault:
            outcome["Fault"] = fault.fault()
        else:
            outcome.update(result)
            if ctx is not None:
                commit(ctx)
        responses.append(outcome)
    return responses
