"""The QBO client: the only way a qbsync service talks to QuickBooks Online.

One :class:`QboClient` per process owns one ``httpx.AsyncClient`` (connection pool), the per-company rate budget
and the retry policy. :meth:`QboClient.company` gives a :class:`QboCompany`, a view bound to one organization whose
realm comes from the access grant, so a caller cannot address another organization's company by mistake.

Every request: ``minorversion`` and ``Accept: application/json``; every write: the caller's ``requestid``, the same
on every attempt. One attempt = take a budget slot → send → map the answer (:func:`read_response`). Around it:

* a 401 is reported to the token provider once; with the fresh grant the request is sent again, once;
* reads retry transport errors, 429 and 5xx in place (bounded, jittered, Retry-After honoured);
* writes retry only transport errors in place, with the same requestid (QBO replays the recorded response);
* a 429 also pauses the company's budget so concurrent requests back off together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote
from uuid import UUID

import httpx

from qbsync.qbo import metrics
from qbsync.qbo.auth import AccessGrant, TokenProvider
from qbsync.qbo.batch import (
    BatchItemResult,
    BatchOperation,
    bid_for,
    build_batch_body,
    chunked,
    parse_batch_response,
)
from qbsync.qbo.cdc import CdcResult, collect_changes
from qbsync.qbo.config import QboClientSettings
from qbsync.qbo.errors import (
    QboApiError,
    QboAuthenticationError,
    QboAuthLostError,
    QboError,
    QboForbiddenError,
    QboThrottledError,
    read_response,
)
from qbsync.qbo.limiter import Clock, InProcessRateBudget, RateBudget, Sleep
from qbsync.qbo.paging import QueryPage, iterate_query, parse_query_response
from qbsync.qbo.query import QboQuery
from qbsync.qbo.request_ids import BATCH_REQUEST_ID_MAX, batch_chunk_request_id, validate_request_id
from qbsync.qbo.retry import Jitter, RetryPolicy, full_jitter
from qbsync.qbo.transport import send

__all__ = ["QboClient", "QboCompany"]

logger = logging.getLogger("qbsync.qbo")

_REALM = "{realm}"  # placeholder in a call's path for the realm of the grant used by the attempt
_ENTITY = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_OBJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RESERVED_PARAMS = frozenset({"minorversion", "requestid", "operation"})
_VOID_BY_OPERATION = frozenset({"invoice"})
_VOID_BY_UPDATE = frozenset({"payment", "salesreceipt", "billpayment"})
# A 401 that survived a refresh, a revoked connection, a forbidden company: nothing later in a batch can succeed.
_FATAL_FOR_BATCH = (QboAuthLostError, QboAuthenticationError, QboForbiddenError)


@dataclass(frozen=True)
class _Call:
    """One logical request, before attempts: what to send and how it may be retried."""

    operation: str  # metrics label, a fixed set: create, read, update, delete, void, query, batch, cdc, ...
    method: str
    path: str  # below /v3/company/{realm}/; may itself contain the _REALM placeholder
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None
    request_id: str | None = None
    batch: bool = False

    @property
    def is_write(self) -> bool:
        return self.request_id is not None


class QboClient:
    """Process-wide QBO client. Use as ``async with QboClient(...) as qbo`` or call :meth:`aclose`."""

    def __init__(
        self,
        settings: QboClientSettings,
        token_provider: TokenProvider,
        *,
        limiter: RateBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter = full_jitter,
    ) -> None:
        self.settings = settings
        self._tokens = token_provider
        self._limiter = limiter or InProcessRateBudget.from_settings(settings, clock=clock, sleep=sleep)
        self._retry = RetryPolicy.from_settings(settings, jitter=jitter)
        self._clock = clock
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=settings.resolved_base_url,
            transport=transport,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.write_timeout_s,
                pool=settings.pool_timeout_s,
            ),
            limits=httpx.Limits(max_connections=settings.max_connections),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": settings.user_agent},
        )

    def company(self, organization_id: UUID) -> QboCompany:
        """A view of the organization's QBO company; the realm is taken from each access grant."""
        return QboCompany(self, organization_id)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -------------------------------------------------------------------------------------------- the request loop

    async def _execute(self, organization_id: UUID, call: _Call) -> dict[str, Any]:
        grant = await self._tokens.get_grant(organization_id)
        refreshed = False
        attempt = 1
        while True:
            try:
                return await self._attempt(grant, call)
            except QboAuthenticationError:
                if refreshed:
                    raise
                refreshed = True
                grant = await self._refresh(organization_id, grant)
            except QboError as error:
                if isinstance(error, QboThrottledError) and error.status == 429:
                    metrics.THROTTLED_RESPONSES.labels(call.operation).inc()
                    pause = error.retry_after if error.retry_after is not None else self.settings.throttle_pause_s
                    await self._limiter.pause(grant.realm_id, min(pause, self.settings.retry_after_max_s))
                if not self._retry.should_retry(error, is_write=call.is_write, attempt=attempt):
                    raise
                delay = self._retry.delay(attempt, error.retry_after)
                metrics.RETRIES.labels(call.operation, type(error).__name__).inc()
                logger.warning(
                    "QBO %s attempt %d failed (%s); retrying in %.2fs",
                    call.operation,
                    attempt,
                    type(error).__name__,
                    delay,
                )
                await self._sleep(delay)
                attempt += 1

    async def _refresh(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        try:
            fresh = await self._tokens.report_unauthorized(organization_id, grant)
        except QboAuthLostError:
            metrics.AUTH_REFRESHES.labels("lost").inc()
            raise
        metrics.AUTH_REFRESHES.labels("refreshed").inc()
        return fresh

    async def _attempt(self, grant: AccessGrant, call: _Call) -> dict[str, Any]:
        params = {**call.params, "minorversion": str(self.settings.minorversion)}
        if call.request_id is not None:
            params["requestid"] = call.request_id
        headers = {"Authorization": f"Bearer {grant.access_token}"}
        if call.content_type:
            headers["Content-Type"] = call.content_type
        url = f"/v3/company/{grant.realm_id}/{call.path.replace(_REALM, grant.realm_id)}"
        async with self._limiter.reserve(grant.realm_id, batch=call.batch) as reservation:
            metrics.THROTTLE_WAIT.labels("batch" if call.batch else "request").observe(reservation.waited_s)
            started = self._clock()
            try:
                response = await send(self._http, call.method, url, params=params, headers=headers, content=call.body)
            except QboError as error:
                self._record(call, None, error, started)
                raise
        try:
            payload = read_response(response.status_code, response.headers, response.content)
        except QboError as error:
            self._record(call, response.status_code, error, started)
            raise
        self._record(call, response.status_code, None, started)
        return payload

    def _record(self, call: _Call, status: int | None, error: QboError | None, started: float) -> None:
        elapsed = max(0.0, self._clock() - started)
        error_name = "none" if error is None else type(error).__name__
        metrics.REQUEST_DURATION.labels(call.operation).observe(elapsed)
        metrics.REQUESTS.labels(call.operation, metrics.status_label(status), error_name).inc()
        logger.debug("QBO %s %s -> %s %s in %.3fs", call.method, call.operation, status, error_name, elapsed)


class QboCompany:
    """Operations on one organization's QBO company. Entity names are QBO's (``"Customer"``, ``"CreditMemo"``)."""

    def __init__(self, client: QboClient, organization_id: UUID) -> None:
        self._client = client
        self.organization_id = organization_id

    async def create(
        self,
        entity: str,
        body: Mapping[str, Any],
        *,
        request_id: str,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create an object; ``params`` may add e.g. ``{"include": "allowduplicatedocnum"}``."""
        call = self._write("create", entity, body, request_id=request_id, params=_extra_params(params))
        return _unwrap(await self._run(call), entity)

    async def read(self, entity: str, id: str) -> dict[str, Any]:
        path = f"{_path_entity(entity)}/{quote(_object_id(id), safe='')}"
        return _unwrap(await self._run(_Call("read", "GET", path)), entity)

    async def update(
        self, entity: str, body: Mapping[str, Any], *, request_id: str, sparse: bool = True
    ) -> dict[str, Any]:
        """Sparse by default: only the fields sent change. A full update clears writable fields left out."""
        if not body.get("Id") or body.get("SyncToken") in (None, ""):
            raise ValueError("an update needs the object's Id and its current SyncToken")
        call = self._write("update", entity, {**body, "sparse": sparse}, request_id=request_id)
        return _unwrap(await self._run(call), entity)

    async def delete(self, entity: str, id: str, sync_token: str, *, request_id: str) -> dict[str, Any]:
        """Delete a transaction (name-list objects cannot be deleted: update them with ``Active: false``)."""
        body = {"Id": _object_id(id), "SyncToken": sync_token}
        call = self._write("delete", entity, body, request_id=request_id, params={"operation": "delete"})
        return _unwrap(await self._run(call), entity)

    async def void(self, entity: str, id: str, sync_token: str, *, request_id: str) -> dict[str, Any]:
        """Void: ``?operation=void`` for invoices, a sparse ``?operation=update&include=void`` for payments,
        sales receipts and bill payments (QBO's two URL forms)."""
        kind = _path_entity(entity)
        body: dict[str, Any] = {"Id": _object_id(id), "SyncToken": sync_token}
        if kind in _VOID_BY_OPERATION:
            params = {"operation": "void"}
        elif kind in _VOID_BY_UPDATE:
            params = {"operation": "update", "include": "void"}
            body["sparse"] = True
        else:
            raise ValueError(f"QBO cannot void a {entity}")
        call = self._write("void", entity, body, request_id=request_id, params=params)
        return _unwrap(await self._run(call), entity)

    async def query(self, q: QboQuery | str) -> QueryPage:
        """One page. Long queries are POSTed as ``application/text`` (QBO's other form) to stay under URL limits."""
        text = str(q)
        if len(text) > self._client.settings.query_post_threshold:
            call = _Call("query", "POST", "query", body=text.encode("utf-8"), content_type="application/text")
        else:
            call = _Call("query", "GET", "query", params={"query": text})
        payload = await self._run(call)
        return parse_query_response(payload, q.entity if isinstance(q, QboQuery) else None)

    async def count(self, q: QboQuery | str) -> int:
        """``COUNT(*)`` of a query (a string must already be a COUNT query)."""
        page = await self.query(q.count() if isinstance(q, QboQuery) else q)
        if page.total_count is None:
            raise QboApiError("QBO's count response has no totalCount")
        return page.total_count

    def query_all(self, q: QboQuery) -> AsyncIterator[dict[str, Any]]:
        """Every matching row, fetched in pages of up to 1000 (bounded by ``query_max_pages``)."""
        settings = self._client.settings
        return iterate_query(self.query, q, page_size=settings.query_page_size, max_pages=settings.query_max_pages)

    async def batch(self, items: Sequence[BatchOperation], *, request_id_prefix: str) -> list[BatchItemResult]:
        """Run items in chunks of 30; outcomes in input order, failures as the same error classes.

        Each chunk's requestid derives from ``request_id_prefix`` and the chunk's position, so calling again with the
        same prefix and items replays instead of repeating. If a whole chunk fails (throttled, server error,
        transport) its items carry that error; auth and permission failures are raised, as nothing can succeed.
        """
        if not request_id_prefix:
            raise ValueError("request_id_prefix must identify the batch (e.g. the event id)")
        results: list[BatchItemResult] = []
        for number, chunk in enumerate(chunked(items, self._client.settings.batch_chunk_size)):
            request_id = validate_request_id(
                batch_chunk_request_id(request_id_prefix, number), limit=BATCH_REQUEST_ID_MAX
            )
            body = encode_json(build_batch_body(chunk))
            call = _Call(
                "batch", "POST", "batch", body=body, content_type="application/json", request_id=request_id, batch=True
            )
            try:
                payload = await self._run(call)
            except _FATAL_FOR_BATCH:
                raise
            except QboError as error:
                results.extend(BatchItemResult(i, bid_for(i), op, error=error) for i, op in chunk)
                continue
            results.extend(parse_batch_response(payload, chunk, intuit_tid=None))
        return results

    async def wait_for_budget(self, *, batch: bool = False) -> None:
        """Wait until the company's request budget would admit a request (``batch``: a batch request) at once.

        Takes no slot (see :meth:`RateBudget.ready`); a caller composing a batch from work still arriving waits here,
        then composes, so a batch that had to wait for the budget leaves with everything that arrived meanwhile.
        """
        grant = await self._client._tokens.get_grant(self.organization_id)
        await self._client._limiter.ready(grant.realm_id, batch=batch)

    async def budget_headroom(self, *, batch: bool = False) -> float:
        """The share of the company's request budget (``batch``: batch budget) free right now (see
        :meth:`RateBudget.headroom`)."""
        grant = await self._client._tokens.get_grant(self.organization_id)
        return self._client._limiter.headroom(grant.realm_id, batch=batch)

    @property
    def batch_pace_s(self) -> float:
        """Seconds per batch request at the sustained rate the budget allows (window / batch requests per window)."""
        settings = self._client.settings
        return settings.window_s / settings.batch_requests_per_window

    async def cdc(self, entities: Sequence[str], changed_since: datetime) -> CdcResult:
        """Changes since ``changed_since`` (≤ 30 days back), windowed past QBO's 1000-per-entity cap."""
        settings = self._client.settings
        for entity in entities:  # names are joined with commas into one parameter: refuse anything but a name
            _path_entity(entity)

        async def fetch(names: Sequence[str], since: datetime) -> Mapping[str, Any]:
            params = {"entities": ",".join(names), "changedSince": since.isoformat()}
            return await self._run(_Call("cdc", "GET", "cdc", params=params))

        return await collect_changes(
            fetch, entities, changed_since, cap=settings.cdc_object_cap, max_windows=settings.cdc_max_windows
        )

    async def preferences(self) -> dict[str, Any]:
        return _unwrap(await self._run(_Call("preferences", "GET", "preferences")), "Preferences")

    async def company_info(self) -> dict[str, Any]:
        call = _Call("company_info", "GET", f"companyinfo/{_REALM}")
        return _unwrap(await self._run(call), "CompanyInfo")

    # -------------------------------------------------------------------------------------------- helpers

    async def _run(self, call: _Call) -> dict[str, Any]:
        return await self._client._execute(self.organization_id, call)

    @staticmethod
    def _write(
        operation: str,
        entity: str,
        body: Mapping[str, Any],
        *,
        request_id: str,
        params: Mapping[str, str] | None = None,
    ) -> _Call:
        return _Call(
            operation,
            "POST",
            _path_entity(entity),
            params=dict(params or {}),
            body=encode_json(body),
            content_type="application/json",
            request_id=validate_request_id(request_id),
        )


def encode_json(body: Mapping[str, Any]) -> bytes:
    """JSON for QBO. ``Decimal`` money goes out as a JSON number with the same digits (never via binary rounding
    surprises: refused if the shortest float form would differ); dates and datetimes as ISO strings."""
    return json.dumps(body, default=_json_default, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        number = float(value)
        if not value.is_finite() or Decimal(repr(number)) != value:
            raise ValueError(f"{value} cannot be sent as an exact JSON number")
        return number
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to QBO")


def _path_entity(entity: str) -> str:
    if not _ENTITY.fullmatch(entity):
        raise ValueError(f"not a QBO entity name: {entity!r}")
    return entity.lower()


def _object_id(value: str) -> str:
    if not _OBJECT_ID.fullmatch(value):
        raise ValueError(f"not a QBO object id: {value!r}")
    return value


def _extra_params(params: Mapping[str, str] | None) -> dict[str, str]:
    extra = dict(params or {})
    reserved = _RESERVED_PARAMS.intersection(name.lower() for name in extra)
    if reserved:
        raise ValueError(f"the client sets {sorted(reserved)} itself")
    return extra


def _unwrap(payload: Mapping[str, Any], entity: str) -> dict[str, Any]:
    """``{"Customer": {...}, "time": ...}`` → the object (QBO capitalises the key; match case-insensitively)."""
    for key, value in payload.items():
        if key.lower() == entity.lower() and isinstance(value, dict):
            return value
    raise QboApiError(f"QBO's response holds no {entity} object")
