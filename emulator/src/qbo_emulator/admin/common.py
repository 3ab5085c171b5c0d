"""Plumbing shared by the admin API modules: errors, body parsing, lookups and the endpoint table entry."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qbo_emulator.accounting import Accounting
from qbo_emulator.core import EmulatorCore
from qbo_emulator.entities import BY_NAME, BY_PATH, EntitySpec
from qbo_emulator.errors import QboFault
from qbo_emulator.store import Company

__all__ = [
    "AdminError",
    "Endpoint",
    "Handler",
    "company_of",
    "core_of",
    "read_model",
    "spec_of",
    "write_as_accountant",
]

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class AdminError(Exception):
    """An admin request that cannot be served: rendered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    """One admin route; the same table builds the Starlette routes and the OpenAPI document."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None

    def route(self) -> Route:
        return Route(f"/_admin{self.path}", _guard(self.handler), methods=[self.method])


def _guard(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except AdminError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except QboFault as fault:
            return JSONResponse({"error": fault.message, "Fault": fault.fault()}, status_code=fault.status)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return guarded


def core_of(request: Request) -> EmulatorCore:
    core: EmulatorCore = request.app.state.emulator
    return core


async def read_model(request: Request, model: type[M]) -> M:
    """The JSON body validated as ``model`` (400 with pydantic's message otherwise; empty body = defaults)."""
    raw = await request.body()
    try:
        return model.model_validate(json.loads(raw) if raw.strip() else {})
    except (json.JSONDecodeError, ValidationError) as exc:
        raise AdminError(400, str(exc)) from exc


def company_of(request: Request) -> Company:
    company = core_of(request).company(request.path_params["realm_id"])
    if company is None:
        raise AdminError(404, f"no company {request.path_params['realm_id']}")
    return company


def spec_of(name: str) -> EntitySpec:
    spec = BY_NAME.get(name) or BY_PATH.get(name.lower())
    if spec is None:
        raise AdminError(404, f"no entity {name}")
    return spec


def write_as_accountant(
    core: EmulatorCore, company: Company, action: Callable[[Accounting], dict[str, Any]]
) -> dict[str, Any]:
    """Run one accountant action through the normal write path and commit it (events, state file)."""
    ctx = core.context(company)
    row = action(Accounting(ctx))
    core.commit(ctx)
    return row
