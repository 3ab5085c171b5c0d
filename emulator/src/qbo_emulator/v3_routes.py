"""The Accounting API v3 under ``/v3/company/{realmId}/…``: the request pipeline QBO's gateway implies.

Per request, in order: authenticate the bearer token (401 gateway body), check it belongs to this company
(403), admit it through the per company + app limiter (429), apply an injected fault if one fires, wait the
configured latency, then run the operation — writes through the ``requestid`` replay cache. Responses carry
``intuit_tid`` (added by the gateway middleware) and ``qbo-version``.

URL shapes follow facts §2 exactly (paths are case sensitive): ``POST /{entity}`` creates, or updates when the
body has an ``Id``; ``?operation=delete``; ``?operation=void`` (Invoice); ``?operation=update&include=void``
(Payment); ``GET /{entity}/{Id}``; ``/query`` (GET ``?query=`` or POST ``application/text``); ``/batch``;
``/cdc``; ``/companyinfo/{realmId}``; ``/preferences``; ``/taxservice/taxcode``; ``/invoice/{Id}/pdf|send``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qbo_emulator import errors
from qbo_emulator.accounting import Accounting
from qbo_emulator.batch import run_batch
from qbo_emulator.chaos import FaultRule
from qbo_emulator.clock import format_response_time
from qbo_emulator.context import WriteContext
from qbo_emulator.core import EmulatorCore, RealmStats
from qbo_emulator.documents import invoice_pdf, send_invoice
from qbo_emulator.entities import BY_NAME, BY_PATH, EntitySpec
from qbo_emulator.errors import QboFault
from qbo_emulator.oauth import ACCOUNTING_SCOPE, Grant
from qbo_emulator.queries import run_cdc, run_query
from qbo_emulator.replay import StoredResponse
from qbo_emulator.responses import (
    DroppedResponse,
    fault_response,
    forbidden_response,
    html_error_response,
    qbo_json,
    system_fault_response,
    throttled_response,
    unauthorized_response,
)
from qbo_emulator.store import Company
from qbo_emulator.taxservice import create_tax_code

__all__ = ["routes"]

log = logging.getLogger(__name__)

_WRITES = frozenset({"create", "update", "delete", "void", "batch", "taxcode", "send"})
_AUTH_DETAIL = {
    "missing": "Authorization header missing",
    "malformed": "Malformed bearer token: the Authorization header is not a Bearer token",
    "expired": "Token expired",
    "revoked": None,
    "unknown": None,
}


@dataclass(frozen=True)
class Call:
    """A parsed request: what to do, to which entity type, and with what."""

    operation: str
    spec: EntitySpec | None = None
    row_id: str | None = None
    body: Any = None

    @property
    def segment(self) -> str | None:
        return self.spec.path if self.spec else None

    @property
    def is_write(self) -> bool:
        return self.operation in _WRITES


def _unsupported(request: Request) -> QboFault:
    relative = request.url.path
    return errors.unsupported_operation(
        f"Operation Could not find resource for relative : {relative} of full path: {request.url} is not supported."
    )


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QboFault(
            "2010", "Request has invalid or unsupported property", f"Property Name:Can not parse the request: {exc}"
        ) from exc


def parse_call(request: Request, rest: str, raw: bytes) -> Call:
    """Map path + method + query parameters to a :class:`Call` (500 Unsupported Operation otherwise)."""
    parts = rest.strip("/").split("/")
    method, params = request.method, request.query_params
    head = parts[0]
    if head == "query" and len(parts) == 1:
        text = params.get("query") if method == "GET" else raw.decode("utf-8", "replace")
        return Call("query", body=text or "")
    if head == "batch" and len(parts) == 1 and method == "POST":
        return Call("batch", body=_json_body(raw))
    if head == "cdc" and len(parts) == 1 and method == "GET":
        return Call("cdc")
    if head in ("companyinfo", "preferences"):
        spec = BY_NAME["CompanyInfo" if head == "companyinfo" else "Preferences"]
        if method == "GET" and len(parts) == (2 if head == "companyinfo" else 1):
            return Call("read", spec, "1")
        if method == "POST" and len(parts) == 1:
            return Call("update", spec, body=_json_body(raw))
    if rest.strip("/") == "taxservice/taxcode" and method == "POST":
        return Call("taxcode", BY_NAME["TaxCode"], body=_json_body(raw))
    found = BY_PATH.get(head)
    if found is None or found.kind == "singleton":
        raise _unsupported(request)
    spec = found
    if method == "GET" and len(parts) == 2:
        return Call("read", spec, parts[1])
    if spec.name == "Invoice" and len(parts) == 3 and (parts[2], method) in (("pdf", "GET"), ("send", "POST")):
        return Call(parts[2], spec, parts[1])
    if method != "POST" or len(parts) != 1:
        raise _unsupported(request)
    body = _json_body(raw)
    operation = (params.get("operation") or "").lower()
    include = (params.get("include") or "").lower()
    if operation == "delete":
        return Call("delete", spec, body=body)
    if operation == "void" or (operation == "update" and "void" in include.split(",")):
        return Call("void", spec, body=body)
    has_id = isinstance(body, dict) and body.get("Id") not in (None, "", 0, "0")
    return Call("update" if has_id else "create", spec, body=body)


class V3Endpoint:
    """The pipeline for one request (built per request; holds nothing between requests)."""

    def __init__(self, core: EmulatorCore, request: Request, realm_id: str) -> None:
        self.core = core
        self.request = request
        self.realm_id = realm_id
        self.company = core.company(realm_id)
        self.zone = core.zone_for(realm_id)
        self.stats: RealmStats = core.realm_stats(realm_id)

    async def serve(self) -> Response:
        now = self.core.clock.now()
        check = self.core.oauth.check_access(self.request.headers.get("authorization"))
        if check.grant is None:
            assert check.problem is not None
            return unauthorized_response(now, _AUTH_DETAIL[check.problem])
        grant = check.grant
        if grant.realm_id != self.realm_id or self.company is None or ACCOUNTING_SCOPE not in grant.scopes:
            return forbidden_response(now)
        raw = await self.request.body()
        try:
            call: Call | QboFault = parse_call(self.request, self.request.path_params["rest"], raw)
        except QboFault as fault:
            call = fault  # still a request: it counts against the limits before it is answered
        key = (self.realm_id, grant.client_id)
        if not self.core.limiter.acquire(key, is_batch=isinstance(call, Call) and call.operation == "batch"):
            self.stats.throttled += 1
            return throttled_response(now, self.zone, self.core.limiter.config)
        try:
            if isinstance(call, QboFault):
                return fault_response(call, now, self.zone)
            self.stats.by_operation[call.operation] += 1
            return await self._admitted(call, grant, self.company)
        finally:
            self.core.limiter.release(key)

    async def _admitted(self, call: Call, grant: Grant, company: Company) -> Response:
        rule = self.core.chaos.pick(self.realm_id, grant.client_id, call.operation, call.segment)
        if rule is not None:
            self.stats.faults_injected += 1
            if rule.kind != "drop":
                return await self._injected(rule, grant)
        delay = self.core.chaos.delay_s(self.realm_id)
        if delay > 0:
            await asyncio.sleep(delay)
        if rule is not None and not rule.after_write:
            return DroppedResponse()
        response = self._with_replay(call, company)
        return DroppedResponse(response) if rule is not None else response

    async def _injected(self, rule: FaultRule, grant: Grant) -> Response:
        now = self.core.clock.now()
        if rule.kind == "http_error":
            if rule.body == "json":
                return system_fault_response(now, self.zone, rule.status)
            return html_error_response(rule.status)
        if rule.kind == "timeout":
            await asyncio.sleep(min(rule.hold_s, self.core.config.timeout_hold_max_s))
            return html_error_response(504)
        if rule.kind == "throttle":
            self.stats.throttled += 1
            return throttled_response(now, self.zone, self.core.limiter.config)
        if rule.kind == "revoke":
            self.core.oauth.revoke_grants(self.realm_id, grant.client_id)
        return unauthorized_response(now, None)

    def _with_replay(self, call: Call, company: Company) -> Response:
        request_id = self.request.query_params.get("requestid")
        if not call.is_write or request_id is None:
            return self._execute(call, company)
        fidelity = self.core.config.fidelity
        limit = fidelity.requestid_batch_max_length if call.operation == "batch" else fidelity.requestid_max_length
        if len(request_id) > limit:
            fault = errors.string_length("requestid", limit, len(request_id))
            return fault_response(fault, self.core.clock.now(), self.zone)
        stored = self.core.replay.lookup(self.realm_id, request_id)
        if stored is not None:
            self.stats.replays += 1
            return Response(stored.body, status_code=stored.status, media_type=stored.media_type)
        response = self._execute(call, company)
        keep = self._storable(response)
        if keep is not None:
            self.core.replay.store(self.realm_id, request_id, keep)
        return response

    def _storable(self, response: Response) -> StoredResponse | None:
        if response.status_code >= 500:
            return None
        if response.status_code >= 400 and not self.core.config.fidelity.requestid_replay_errors:
            return None
        media = response.media_type or "application/json"
        return StoredResponse(response.status_code, bytes(response.body), media, self.core.clock.timestamp())

    def _execute(self, call: Call, company: Company) -> Response:
        ctx = self.core.context(company, "allowduplicatedocnum" in self.request.query_params.get("include", "").lower())
        try:
            return self._dispatch(call, company, ctx)
        except QboFault as fault:
            return fault_response(fault, ctx.now, self.zone)
        except Exception:  # the service edge: a bug answers as QBO's SystemFault would, and is logged in full
            log.exception("internal error serving %s %s", self.request.method, self.request.url.path)
            return system_fault_response(ctx.now, self.zone)

    def _dispatch(self, call: Call, company: Company, ctx: WriteContext) -> Response:
        accounting = Accounting(ctx)
        op, spec = call.operation, call.spec
        if op == "query":
            return self._wrap("QueryResponse", run_query(company, str(call.body)), ctx.now)
        if op == "cdc":
            params = self.request.query_params
            result = run_cdc(
                company, params.get("entities"), params.get("changedSince"), ctx.now, self.core.config.fidelity
            )
            return self._wrap("CDCResponse", result, ctx.now)
        if op == "batch":
            items = run_batch(
                company,
                call.body,
                self.core.config.fidelity.batch_max_items,
                lambda allow: self.core.context(company, allow),
                self.core.commit,
            )
            return self._wrap("BatchItemResponse", items, ctx.now)
        assert spec is not None
        if op == "read":
            return self._wrap(spec.name, accounting.read(spec, call.row_id or "1"), ctx.now)
        if op == "pdf":
            pdf = invoice_pdf(accounting.read(spec, call.row_id or ""), company)
            return Response(pdf, media_type="application/pdf")
        row = self._write(call, accounting, ctx)
        self.core.commit(ctx)
        return self._wrap(spec.name if op != "taxcode" else "", row, ctx.now)

    def _write(self, call: Call, accounting: Accounting, ctx: WriteContext) -> dict[str, Any]:
        spec, body = call.spec, call.body
        assert spec is not None
        if call.operation == "send":
            return send_invoice(ctx, accounting.read(spec, call.row_id or ""), self.request.query_params.get("sendTo"))
        if not isinstance(body, dict):
            raise errors.required_param(spec.name)
        if call.operation == "taxcode":
            return create_tax_code(accounting, body)
        if spec.kind == "singleton":
            return accounting.update_singleton(spec, body)
        handler = {
            "create": accounting.create,
            "update": accounting.update,
            "delete": accounting.delete,
            "void": accounting.void,
        }[call.operation]
        return handler(spec, body)

    def _wrap(self, key: str, value: Any, now: datetime) -> Response:
        time_text = format_response_time(now, self.zone)
        body = dict(value, time=time_text) if not key else {key: value, "time": time_text}
        return qbo_json(body)


async def v3_endpoint(request: Request) -> Response:
    core: EmulatorCore = request.app.state.emulator
    realm_id = request.path_params["realm_id"]
    endpoint = V3Endpoint(core, request, realm_id)
    endpoint.stats.requests += 1
    response = await endpoint.serve()
    endpoint.stats.by_status[response.status_code] += 1
    response.headers["qbo-version"] = core.config.fidelity.qbo_version
    return response


routes = [Route("/v3/company/{realm_id}/{rest:path}", v3_endpoint, methods=["GET", "POST"])]
