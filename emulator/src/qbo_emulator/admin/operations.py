"""Admin API, part 2: the accountant's actions, faults, latency, limits, webhooks, the clock, reset, config."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qbo_emulator.accounting import Accounting
from qbo_emulator.admin.common import (
    AdminError,
    Endpoint,
    company_of,
    core_of,
    read_model,
    spec_of,
    write_as_accountant,
)
from qbo_emulator.chaos import FaultRule
from qbo_emulator.config import LatencyConfig, LimitsConfig
from qbo_emulator.entities import BY_NAME
from qbo_emulator.webhooks import Subscription

__all__ = ["ENDPOINTS"]


class ClockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_s: float | None = Field(default=None, ge=0)
    set: datetime | None = None


class LatencyUpdate(LatencyConfig):
    realm_id: str | None = None


class PaymentAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str
    amount: float
    invoice_id: str | None = None
    credit_memo_id: str | None = None
    credit_amount: float | None = None
    payment_method_id: str | None = None
    txn_date: str | None = None


class RefundAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str
    amount: float
    deposit_account_id: str | None = None
    item_id: str = "1"
    payment_method_id: str | None = None


class ItemChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_price: float | None = None
    active: bool | None = None


class WriteAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str
    operation: Literal["create", "update", "delete", "void"] = "create"
    body: dict[str, Any]


async def record_payment(request: Request) -> Response:
    core, company, body = core_of(request), company_of(request), await read_model(request, PaymentAction)
    lines: list[dict[str, Any]] = []
    if body.invoice_id:
        applied = body.amount + (body.credit_amount or 0)
        lines.append({"Amount": applied, "LinkedTxn": [{"TxnId": body.invoice_id, "TxnType": "Invoice"}]})
    if body.credit_memo_id:
        credit = body.credit_amount or 0
        lines.append({"Amount": credit, "LinkedTxn": [{"TxnId": body.credit_memo_id, "TxnType": "CreditMemo"}]})
    payment: dict[str, Any] = {"CustomerRef": {"value": body.customer_id}, "TotalAmt": body.amount, "Line": lines}
    if body.payment_method_id:
        payment["PaymentMethodRef"] = {"value": body.payment_method_id}
    if body.txn_date:
        payment["TxnDate"] = body.txn_date
    row = write_as_accountant(core, company, lambda acc: acc.create(BY_NAME["Payment"], payment))
    return JSONResponse({"Payment": row}, status_code=201)


async def record_refund(request: Request) -> Response:
    core, company, body = core_of(request), company_of(request), await read_model(request, RefundAction)
    account = body.deposit_account_id or next(
        (a["Id"] for a in company.rows("Account") if a.get("AccountType") == "Bank"), None
    )
    refund: dict[str, Any] = {
        "CustomerRef": {"value": body.customer_id},
        "DepositToAccountRef": {"value": account},
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": body.amount,
                "SalesItemLineDetail": {"ItemRef": {"value": body.item_id}, "Qty": 1, "UnitPrice": body.amount},
            }
        ],
    }
    if body.payment_method_id:
        refund["PaymentMethodRef"] = {"value": body.payment_method_id}
    row = write_as_accountant(core, company, lambda acc: acc.create(BY_NAME["RefundReceipt"], refund))
    return JSONResponse({"RefundReceipt": row}, status_code=201)


async def change_item(request: Request) -> Response:
    core, company, body = core_of(request), company_of(request), await read_model(request, ItemChange)
    item = company.get("Item", request.path_params["row_id"])
    if item is None:
        raise AdminError(404, "no such item")
    patch: dict[str, Any] = {"Id": item["Id"], "SyncToken": item["SyncToken"], "sparse": True}
    if body.unit_price is not None:
        patch["UnitPrice"] = body.unit_price
    if body.active is not None:
        patch["Active"] = body.active
    row = write_as_accountant(core, company, lambda acc: acc.update(BY_NAME["Item"], patch))
    return JSONResponse({"Item": row})


async def accountant_write(request: Request) -> Response:
    core, company, body = core_of(request), company_of(request), await read_model(request, WriteAction)
    spec = spec_of(body.entity)
    current = company.get(spec.name, str(body.body.get("Id", "")))
    payload = dict(body.body)
    if current is not None and "SyncToken" not in payload:
        payload["SyncToken"] = current["SyncToken"]

    def act(acc: Accounting) -> dict[str, Any]:
        return {
            "create": acc.create,
            "update": acc.update,
            "delete": acc.delete,
            "void": acc.void,
        }[body.operation](spec, payload)

    row = write_as_accountant(core, company, act)
    return JSONResponse({spec.name: row})


async def list_faults(request: Request) -> Response:
    return JSONResponse([rule.model_dump(mode="json") for rule in core_of(request).chaos.rules])


async def add_fault(request: Request) -> Response:
    rule = core_of(request).chaos.add(await read_model(request, FaultRule))
    return JSONResponse(rule.model_dump(mode="json"), status_code=201)


async def delete_fault(request: Request) -> Response:
    removed = core_of(request).chaos.remove(request.path_params["fault_id"])
    return JSONResponse({"removed": removed}, status_code=200 if removed else 404)


async def clear_faults(request: Request) -> Response:
    return JSONResponse({"removed": core_of(request).chaos.remove(None)})


async def set_latency(request: Request) -> Response:
    body = await read_model(request, LatencyUpdate)
    config = LatencyConfig(median_ms=body.median_ms, p99_ms=body.p99_ms, max_ms=body.max_ms, seed=body.seed)
    core_of(request).chaos.set_latency(body.realm_id, config)
    return JSONResponse({"realm_id": body.realm_id, **config.model_dump()})


async def get_limits(request: Request) -> Response:
    return JSONResponse(core_of(request).limiter.config.model_dump())


async def set_limits(request: Request) -> Response:
    core = core_of(request)
    raw = await request.body()
    try:
        merged = {**core.limiter.config.model_dump(), **(json.loads(raw) if raw.strip() else {})}
        core.limiter.config = LimitsConfig.model_validate(merged)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise AdminError(400, str(exc)) from exc
    return JSONResponse(core.limiter.config.model_dump())


async def add_webhook(request: Request) -> Response:
    core = core_of(request)
    subscription = await read_model(request, Subscription)
    if subscription.client_id not in core.oauth.apps:
        raise AdminError(404, f"no app {subscription.client_id}")
    return JSONResponse(core.webhooks.subscribe(subscription).model_dump(), status_code=201)


async def list_webhooks(request: Request) -> Response:
    return JSONResponse([s.model_dump() for s in core_of(request).webhooks.subscriptions.values()])


async def delete_webhook(request: Request) -> Response:
    removed = core_of(request).webhooks.unsubscribe(request.path_params["sub_id"])
    return JSONResponse({"removed": removed}, status_code=200 if removed else 404)


async def list_deliveries(request: Request) -> Response:
    wanted = request.query_params.get("subscription_id")
    deliveries = [d.as_dict() for d in core_of(request).webhooks.deliveries if wanted in (None, d.subscription_id)]
    return JSONResponse(deliveries)


async def get_clock(request: Request) -> Response:
    clock = core_of(request).clock
    return JSONResponse({"now": clock.now().isoformat(), "offset_s": clock.offset.total_seconds()})


async def move_clock(request: Request) -> Response:
    clock, body = core_of(request).clock, await read_model(request, ClockMove)
    if body.set is not None:
        clock.set(body.set)
    if body.advance_s is not None:
        clock.advance(body.advance_s)
    return JSONResponse({"now": clock.now().isoformat(), "offset_s": clock.offset.total_seconds()})


async def reset(request: Request) -> Response:
    core_of(request).reset()
    return JSONResponse({"reset": True})


async def show_config(request: Request) -> Response:
    config = core_of(request).config.model_dump(mode="json", exclude={"apps"})
    config["apps"] = [
        {"client_id": a.client_id, "name": a.name, "redirect_uris": a.redirect_uris}
        for a in core_of(request).config.apps
    ]
    return JSONResponse(config)


ENDPOINTS = [
    Endpoint(
        "POST", "/companies/{realm_id}/accountant/payments", record_payment, "Record a (partial) payment", PaymentAction
    ),
    Endpoint(
        "POST", "/companies/{realm_id}/accountant/refunds", record_refund, "Record a refund receipt", RefundAction
    ),
    Endpoint(
        "POST",
        "/companies/{realm_id}/accountant/items/{row_id}",
        change_item,
        "Change price / (de)activate",
        ItemChange,
    ),
    Endpoint(
        "POST", "/companies/{realm_id}/accountant/write", accountant_write, "Any create/update/delete/void", WriteAction
    ),
    Endpoint("GET", "/faults", list_faults, "Active fault rules and their counters"),
    Endpoint("POST", "/faults", add_fault, "Inject a fault", FaultRule),
    Endpoint("DELETE", "/faults", clear_faults, "Remove every fault rule"),
    Endpoint("DELETE", "/faults/{fault_id}", delete_fault, "Remove one fault rule"),
    Endpoint("PUT", "/latency", set_latency, "Latency (default or per company)", LatencyUpdate),
    Endpoint("GET", "/limits", get_limits, "Current throttling limits"),
    Endpoint("PUT", "/limits", set_limits, "Change throttling limits (partial body)", LimitsConfig),
    Endpoint("POST", "/webhooks", add_webhook, "Subscribe a webhook endpoint", Subscription),
    Endpoint("GET", "/webhooks", list_webhooks, "Webhook subscriptions"),
    Endpoint("GET", "/webhooks/deliveries", list_deliveries, "Deliveries and their attempts (?subscription_id=)"),
    Endpoint("DELETE", "/webhooks/{sub_id}", delete_webhook, "Remove a subscription"),
    Endpoint("GET", "/clock", get_clock, "The emulator clock"),
    Endpoint("POST", "/clock", move_clock, "Move the clock forward (advance_s or set)", ClockMove),
    Endpoint("POST", "/reset", reset, "Forget all companies, tokens, faults, subscriptions"),
    Endpoint("GET", "/config", show_config, "The configuration (secrets omitted)"),
]
