"""Batch operations: chunks of 30, one ``requestid`` per chunk, per-item outcomes as the same error classes.

QBO runs a batch's items independently (each succeeds or fails on its own) and in order, but an item cannot see an
earlier item's result. Limits: 30 items (more gets 1040), requestid at most 36 characters, bId at most 10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from qbsync.qbo.errors import QboApiError, QboError, error_from_fault
from qbsync.qbo.paging import QueryPage, parse_query_response
from qbsync.qbo.query import QboQuery

__all__ = ["BatchItemResult", "BatchOperation", "bid_for", "build_batch_body", "chunked", "parse_batch_response"]

BatchVerb = Literal["create", "update", "delete", "query"]


@dataclass(frozen=True)
class BatchOperation:
    """One item of a batch. Build with the class methods; ``entity`` is QBO's name, e.g. ``"Customer"``."""

    operation: BatchVerb
    entity: str | None = None
    body: Mapping[str, Any] | None = None
    query_text: str | None = None
    options_data: str | None = None

    @classmethod
    def create(cls, entity: str, body: Mapping[str, Any]) -> BatchOperation:
        return cls("create", entity, dict(body))

    @classmethod
    def update(cls, entity: str, body: Mapping[str, Any], *, sparse: bool = True) -> BatchOperation:
        _require_id_and_sync_token(body)
        return cls("update", entity, {**body, "sparse": sparse})

    @classmethod
    def delete(cls, entity: str, id: str, sync_token: str) -> BatchOperation:
        return cls("delete", entity, {"Id": id, "SyncToken": sync_token})

    @classmethod
    def void(cls, entity: str, id: str, sync_token: str) -> BatchOperation:
        """QBO voids in a batch through ``update`` with ``optionsData: "void"``."""
        return cls("update", entity, {"Id": id, "SyncToken": sync_token, "sparse": True}, options_data="void")

    @classmethod
    def query(cls, query: QboQuery | str) -> BatchOperation:
        return cls("query", query_text=str(query))

    def to_item(self, bid: str) -> dict[str, Any]:
        item: dict[str, Any] = {"bId": bid}
        if self.operation == "query":
            item["Query"] = self.query_text
            return item
        if self.entity is None or self.body is None:
            raise ValueError(f"a batch {self.operation} needs an entity and a body")
        item["operation"] = self.operation
        item[self.entity] = dict(self.body)
        if self.options_data:
            item["optionsData"] = self.options_data
        return item


@dataclass(frozen=True)
class BatchItemResult:
    """The outcome of one item, in input order: the object, a query page, or the error it failed with."""

    index: int
    bid: str
    operation: BatchOperation
    entity: dict[str, Any] | None = None
    query_page: QueryPage | None = None
    error: QboError | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.error is None


def bid_for(index: int) -> str:
    """``b<index>``: unique in the call and within QBO's 10-character bId limit for up to a billion items."""
    bid = f"b{index}"
    if len(bid) > 10:
        raise ValueError("too many batch items")
    return bid


def chunked(items: Sequence[BatchOperation], size: int) -> list[list[tuple[int, BatchOperation]]]:
    """Split into chunks of at most ``size`` keeping each item's position in the whole call."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    indexed = list(enumerate(items))
    return [indexed[start : start + size] for start in range(0, len(indexed), size)]


def build_batch_body(chunk: Sequence[tuple[int, BatchOperation]]) -> dict[str, Any]:
    return {"BatchItemRequest": [operation.to_item(bid_for(index)) for index, operation in chunk]}


def parse_batch_response(
    payload: Mapping[str, Any], chunk: Sequence[tuple[int, BatchOperation]], *, intuit_tid: str | None
) -> list[BatchItemResult]:
    """Match ``BatchItemResponse`` entries to the chunk's items by bId; a missing entry is an error outcome."""
    raw = payload.get("BatchItemResponse")
    by_bid = {
        entry["bId"]: entry
        for entry in (raw if isinstance(raw, list) else [])
        if isinstance(entry, Mapping) and isinstance(entry.get("bId"), str)
    }
    results = []
    for index, operation in chunk:
        bid = bid_for(index)
        entry = by_bid.get(bid)
        if entry is None:
            error = QboApiError(f"QBO's batch response has no result for item {bid}", intuit_tid=intuit_tid)
            results.append(BatchItemResult(index, bid, operation, error=error))
        else:
            results.append(_item_result(index, bid, operation, entry, intuit_tid))
    return results


def _item_result(
    index: int, bid: str, operation: BatchOperation, entry: Mapping[str, Any], intuit_tid: str | None
) -> BatchItemResult:
    fault = entry.get("Fault")
    if isinstance(fault, Mapping):
        return BatchItemResult(index, bid, operation, error=error_from_fault(fault, intuit_tid=intuit_tid))
    if operation.operation == "query":
        page = parse_query_response({"QueryResponse": entry.get("QueryResponse") or {}}, None)
        return BatchItemResult(index, bid, operation, query_page=page)
    obj = _entity_in(entry, operation.entity)
    if obj is None:
        error = QboApiError(f"QBO's batch result for item {bid} holds no {operation.entity}", intuit_tid=intuit_tid)
        return BatchItemResult(index, bid, operation, error=error)
    return BatchItemResult(index, bid, operation, entity=obj)


def _entity_in(entry: Mapping[str, Any], entity: str | None) -> dict[str, Any] | None:
    if entity is None:
        return None
    for key, value in entry.items():
        if key.lower() == entity.lower() and isinstance(value, dict):
            return value
    return None


def _require_id_and_sync_token(body: Mapping[str, Any]) -> None:
    if not body.get("Id") or body.get("SyncToken") in (None, ""):
        raise ValueError("an update needs the object's Id and its current SyncToken")
