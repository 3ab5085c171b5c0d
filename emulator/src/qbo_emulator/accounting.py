"""The internal write path: create, read, full/sparse update, delete and void for every entity.

Everything that changes company data goes through :class:`Accounting` (the v3 API, batch items and the admin
"accountant" alike), so CDC, webhooks and the rules see exactly one behaviour. The mechanics shared by every
entity live here (SyncToken, MetaData, server-owned fields, sparse merging, delete/void dispatch); the
entity-specific rules live in ``lists``, ``sales`` and ``payments``.
"""

from __future__ import annotations

from typing import Any, Final

from qbo_emulator import errors
from qbo_emulator.context import WriteContext
from qbo_emulator.entities import EntitySpec
from qbo_emulator.lists import build_list_row
from qbo_emulator.payments import apply_links, build_payment_row, unlink_all, void_payment_row
from qbo_emulator.refs import clean_input
from qbo_emulator.sales import build_sales_row, void_sales_row

__all__ = ["SERVER_FIELDS", "Accounting"]

Row = dict[str, Any]

SERVER_FIELDS: Final = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse", "status", "time"})


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class Accounting:
    """Business operations on one company within one :class:`WriteContext`."""

    def __init__(self, ctx: WriteContext) -> None:
        self.ctx = ctx
        self.company = ctx.company

    # ------------------------------------------------------------------ reads
    def read(self, spec: EntitySpec, row_id: str) -> Row:
        """A stored row; 610 when it does not exist (QBO answers 400, not 404)."""
        row = self.company.get(spec.name, row_id)
        if row is None:
            raise errors.object_not_found()
        return row

    # ------------------------------------------------------------------ writes
    def create(self, spec: EntitySpec, body: Row) -> Row:
        if spec.kind in ("readonly", "singleton"):
            raise errors.unsupported_operation(f"Operation Create is not supported for {spec.name}.")
        fields = {k: v for k, v in clean_input(body).items() if k not in SERVER_FIELDS}
        row = self._build(spec, fields, None)
        row["Id"] = self.company.next_id(spec)
        self._stamp(row, None)
        self.company.put(spec.name, row, self.ctx.now.timestamp())
        if spec.name == "Payment":
            apply_links(self.ctx, row, None)
        self.ctx.emit(spec.name, row["Id"], "Create")
        return row

    def update(self, spec: EntitySpec, body: Row) -> Row:
        if spec.kind == "readonly":
            raise errors.unsupported_operation(f"Operation Update is not supported for {spec.name}.")
        old = self._current(spec, body)
        if _is_true(body.get("sparse")):
            fields = self._sparse_merge(old, body)
        else:
            fields = {k: v for k, v in clean_input(body).items() if k not in SERVER_FIELDS}
        row = self._build(spec, fields, old)
        row["Id"] = old["Id"]
        self._stamp(row, old)
        self.company.put(spec.name, row, self.ctx.now.timestamp())
        if spec.name == "Payment":
            apply_links(self.ctx, row, old)
        self.ctx.emit(spec.name, row["Id"], "Update")
        return row

    def delete(self, spec: EntitySpec, body: Row) -> Row:
        """Remove a transaction (name lists answer 500 Unsupported Operation, as QBO does)."""
        if not spec.deletable:
            raise errors.unsupported_operation("Operation Delete is not supported.")
        old = self._current(spec, body)
        if spec.name == "Payment":
            apply_links(self.ctx, {"Id": old["Id"], "Line": []}, old)
        else:
            unlink_all(self.ctx, spec.name, old)
        self.company.remove(spec.name, old["Id"], self.ctx.now.timestamp(), self.ctx.stamp)
        self.ctx.emit(spec.name, old["Id"], "Delete")
        return {"domain": "QBO", "status": "Deleted", "Id": old["Id"]}

    def void(self, spec: EntitySpec, body: Row) -> Row:
        """Void in place (Invoice via ``operation=void``, Payment via ``include=void``)."""
        if spec.void is None:
            raise errors.unsupported_operation("Operation Void is not supported.")
        old = self._current(spec, body)
        if spec.name == "Payment":
            row = void_payment_row(old)
            apply_links(self.ctx, row, old)
        else:
            row = void_sales_row(self.ctx, spec.name, old)
        self._stamp(row, old)
        self.company.put(spec.name, row, self.ctx.now.timestamp())
        self.ctx.emit(spec.name, row["Id"], "Void")
        return row

    def update_singleton(self, spec: EntitySpec, body: Row) -> Row:
        """CompanyInfo / Preferences: always a merge (QBO documents them as sparse-style updates)."""
        old = self.company.get(spec.name, "1")
        if old is None:
            raise errors.object_not_found()
        self._check_sync_token(old, body)
        row = _deep_merge(old, {k: v for k, v in clean_input(body).items() if k not in SERVER_FIELDS})
        self._stamp(row, old)
        self.company.put(spec.name, row, self.ctx.now.timestamp())
        self.ctx.emit(spec.name, "1", "Update")
        return row

    # ------------------------------------------------------------------ mechanics
    def _build(self, spec: EntitySpec, fields: Row, old: Row | None) -> Row:
        if spec.kind == "name":
            return build_list_row(self.ctx, spec.name, fields, old)
        if spec.name == "Payment":
            return build_payment_row(self.ctx, fields, old)
        return build_sales_row(self.ctx, spec.name, fields, old)

    def _current(self, spec: EntitySpec, body: Row) -> Row:
        row_id = body.get("Id")
        if row_id in (None, ""):
            raise errors.required_param("Id")
        old = self.company.get(spec.name, str(row_id))
        if old is None:
            raise errors.object_not_found()
        self._check_sync_token(old, body)
        return old

    @staticmethod
    def _check_sync_token(old: Row, body: Row) -> None:
        sent = body.get("SyncToken")
        if sent in (None, ""):
            raise errors.required_param("SyncToken")
        if str(sent) != str(old.get("SyncToken")):
            raise errors.stale_object()

    @staticmethod
    def _sparse_merge(old: Row, body: Row) -> Row:
        """Sparse update: the listed top-level fields replace the stored ones (``Line`` replaces all lines)."""
        merged = {k: v for k, v in old.items() if k not in SERVER_FIELDS}
        if isinstance(old.get("TxnTaxDetail"), dict) and "TxnTaxDetail" not in body:
            # The stored tax was computed, not sent: keep the code, let the amount be recomputed.
            code = old["TxnTaxDetail"].get("TxnTaxCodeRef")
            merged["TxnTaxDetail"] = {"TxnTaxCodeRef": code} if code else {}
        for key, value in body.items():
            if key in SERVER_FIELDS:
                continue
            if value is None or value == "":
                merged.pop(key, None)
            else:
                merged[key] = clean_input(value)
        return merged

    def _stamp(self, row: Row, old: Row | None) -> None:
        stamp = self.ctx.stamp
        if old is None:
            row["SyncToken"] = "0"
            row["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
        else:
            row["SyncToken"] = str(int(old.get("SyncToken", "0")) + 1)
            row["MetaData"] = {"CreateTime": old["MetaData"]["CreateTime"], "LastUpdatedTime": stamp}
        row["domain"] = "QBO"
        row["sparse"] = False


def _deep_merge(base: Row, patch: Row) -> Row:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
