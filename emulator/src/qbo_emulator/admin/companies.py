"""Admin API, part 1: companies (create, switches, demo seed, inspection, counters) and OAuth shortcuts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qbo_emulator.admin.common import (
    AdminError,
    Endpoint,
    company_of,
    core_of,
    read_model,
    spec_of,
    write_as_accountant,
)
from qbo_emulator.config import DEV_CLIENT_ID
from qbo_emulator.core import PendingConsent
from qbo_emulator.demo import seed_demo
from qbo_emulator.entities import BY_NAME
from qbo_emulator.oauth import ACCOUNTING_SCOPE
from qbo_emulator.store import Company

__all__ = ["ENDPOINTS"]


class CompanyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "Sandbox Company_US_1"
    realm_id: str | None = None
    country: Literal["US"] = "US"
    timezone: str | None = None
    state: str = "CA"
    ast: bool = True
    custom_txn_numbers: bool = True
    duplicate_docnum_check: bool = True
    seed_demo: bool = False


class CompanyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    timezone: str | None = None
    ast: bool | None = None
    custom_txn_numbers: bool | None = None
    duplicate_docnum_check: bool | None = None


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = DEV_CLIENT_ID
    scopes: list[str] = Field(default_factory=lambda: [ACCOUNTING_SCOPE])
    hard_expiry: bool = False


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str | None = None


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    realm_id: str | None = None
    client_id: str | None = None
    deny: bool = False


def _summary(company: Company) -> dict[str, Any]:
    prefs = company.get("Preferences", "1") or {}
    return {
        "realm_id": company.realm_id,
        "name": company.settings.name,
        "country": company.settings.country,
        "timezone": company.settings.timezone,
        "state": company.settings.state,
        "ast": bool(prefs.get("TaxPrefs", {}).get("PartnerTaxEnabled")),
        "custom_txn_numbers": bool(prefs.get("SalesFormsPrefs", {}).get("CustomTxnNumbers")),
        "duplicate_docnum_check": company.settings.duplicate_docnum_check,
        "counts": {entity: len(rows) for entity, rows in company.tables.items()},
    }


async def create_company(request: Request) -> Response:
    core, body = core_of(request), await read_model(request, CompanyCreate)
    company = core.create_company(
        name=body.name,
        realm_id=body.realm_id,
        timezone=body.timezone,
        state=body.state,
        ast=body.ast,
        custom_txn_numbers=body.custom_txn_numbers,
        duplicate_docnum_check=body.duplicate_docnum_check,
    )
    if body.seed_demo:
        seed_demo(company, core.clock.now(), core.config.fidelity)
        core.persist(company)
    return JSONResponse(_summary(company), status_code=201)


async def list_companies(request: Request) -> Response:
    return JSONResponse([_summary(c) for c in core_of(request).companies.values()])


async def get_company(request: Request) -> Response:
    return JSONResponse(_summary(company_of(request)))


async def patch_company(request: Request) -> Response:
    core, company, body = core_of(request), company_of(request), await read_model(request, CompanyPatch)
    if body.name is not None:
        company.settings.name = body.name
    if body.timezone is not None:
        company.settings.timezone = body.timezone
    if body.duplicate_docnum_check is not None:
        company.settings.duplicate_docnum_check = body.duplicate_docnum_check
    prefs: dict[str, Any] = {}
    if body.ast is not None:
        prefs["TaxPrefs"] = {"PartnerTaxEnabled": body.ast}
    if body.custom_txn_numbers is not None:
        prefs["SalesFormsPrefs"] = {"CustomTxnNumbers": body.custom_txn_numbers}
    if prefs:
        current = company.get("Preferences", "1") or {}
        spec = BY_NAME["Preferences"]
        write_as_accountant(
            core, company, lambda acc: acc.update_singleton(spec, {**prefs, "SyncToken": current["SyncToken"]})
        )
    core.persist(company)
    return JSONResponse(_summary(company))


async def seed_company(request: Request) -> Response:
    core, company = core_of(request), company_of(request)
    seed_demo(company, core.clock.now(), core.config.fidelity)
    core.persist(company)
    return JSONResponse(_summary(company))


async def list_entities(request: Request) -> Response:
    company, spec = company_of(request), spec_of(request.path_params["entity"])
    rows = company.rows(spec.name)
    if request.query_params.get("active") in ("true", "false"):
        wanted = request.query_params["active"] == "true"
        rows = [r for r in rows if r.get("Active", True) is wanted]
    return JSONResponse({spec.name: sorted(rows, key=lambda r: int(r["Id"]) if r["Id"].isdigit() else 0)})


async def get_entity(request: Request) -> Response:
    company, spec = company_of(request), spec_of(request.path_params["entity"])
    row = company.get(spec.name, request.path_params["row_id"])
    if row is None:
        raise AdminError(404, f"no {spec.name} {request.path_params['row_id']}")
    return JSONResponse({spec.name: row})


async def company_stats(request: Request) -> Response:
    core, company = core_of(request), company_of(request)
    stats = core.realm_stats(company.realm_id).as_dict()
    stats["in_flight"] = {
        client_id: core.limiter.in_flight((company.realm_id, client_id)) for client_id in core.oauth.apps
    }
    return JSONResponse(stats)


# ---------------------------------------------------------------------------- OAuth shortcuts


async def issue_tokens(request: Request) -> Response:
    core, company, body = core_of(request), company_of(request), await read_model(request, TokenRequest)
    if body.client_id not in core.oauth.apps:
        raise AdminError(404, f"no app {body.client_id}")
    grant = core.oauth.new_grant(body.client_id, company.realm_id, body.scopes)
    tokens = core.oauth.issue_for(grant, body.hard_expiry)
    core.persist_oauth()
    return JSONResponse({**tokens, "realmId": company.realm_id})


async def revoke_company(request: Request) -> Response:
    core, company = core_of(request), company_of(request)
    body = await read_model(request, RevokeRequest)
    count = core.oauth.revoke_grants(company.realm_id, body.client_id)
    core.persist_oauth()
    return JSONResponse({"revoked_grants": count})


async def expire_access(request: Request) -> Response:
    core, company = core_of(request), company_of(request)
    return JSONResponse({"expired_access_tokens": core.oauth.expire_access_tokens(company.realm_id)})


async def queue_consent(request: Request) -> Response:
    core, body = core_of(request), await read_model(request, Consent)
    if body.realm_id is not None and body.realm_id not in core.companies:
        raise AdminError(404, f"no company {body.realm_id}")
    core.pending_consent.append(PendingConsent(body.realm_id, body.client_id, body.deny))
    return JSONResponse({"queued": len(core.pending_consent)}, status_code=201)


ENDPOINTS = [
    Endpoint(
        "POST", "/companies", create_company, "Create a company (optionally seeded with demo data)", CompanyCreate
    ),
    Endpoint("GET", "/companies", list_companies, "List companies with their switches and row counts"),
    Endpoint("GET", "/companies/{realm_id}", get_company, "One company's switches and row counts"),
    Endpoint(
        "PATCH",
        "/companies/{realm_id}",
        patch_company,
        "Change name, time zone, AST, numbering, dup check",
        CompanyPatch,
    ),
    Endpoint("POST", "/companies/{realm_id}/seed-demo", seed_company, "Add the demo data set to a company"),
    Endpoint("GET", "/companies/{realm_id}/entities/{entity}", list_entities, "All rows of one entity (?active=)"),
    Endpoint("GET", "/companies/{realm_id}/entities/{entity}/{row_id}", get_entity, "One stored row"),
    Endpoint("GET", "/companies/{realm_id}/stats", company_stats, "Request counters incl. 429s served"),
    Endpoint(
        "POST", "/companies/{realm_id}/tokens", issue_tokens, "Issue a token response (skips the browser)", TokenRequest
    ),
    Endpoint("POST", "/companies/{realm_id}/revoke", revoke_company, "Revoke the company's grants", RevokeRequest),
    Endpoint("POST", "/companies/{realm_id}/expire-access-tokens", expire_access, "Expire access tokens now"),
    Endpoint("POST", "/oauth/consent", queue_consent, "Queue the answer of the next authorize call", Consent),
]
