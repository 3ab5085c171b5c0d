"""Intuit OAuth 2.0 over HTTP: discovery, authorize, token, revoke, userinfo (facts §1).

The discovery documents point at this emulator's own origin, so ``intuitlib.AuthClient`` works unchanged when
given the discovery URL as its ``environment``. The authorize endpoint skips the browser: it "consents" at once
and redirects with ``code``, ``state`` and ``realmId``. Which company it connects is, in order: an admin-set
pending consent, the emulator-only ``realmId`` query hint, the first company, or a new sandbox company.
Token-endpoint faults (5xx, timeouts, dropped connections after the refresh was applied) can be injected with
``operation: "token"``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from qbo_emulator.config import AppRegistration
from qbo_emulator.core import EmulatorCore, PendingConsent
from qbo_emulator.oauth import KNOWN_SCOPES, OAuthError
from qbo_emulator.responses import DroppedResponse, html_error_response, unauthorized_response

__all__ = ["discovery_document", "routes"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _origin(request: Request, core: EmulatorCore) -> str:
    if core.config.public_base_url:
        return core.config.public_base_url.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def discovery_document(origin: str) -> dict[str, Any]:
    """Intuit's discovery document, with every endpoint on ``origin``."""
    return {
        "issuer": f"{origin}/op/v1",
        "authorization_endpoint": f"{origin}/connect/oauth2",
        "token_endpoint": f"{origin}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{origin}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{origin}/v2/oauth2/tokens/revoke",
        "jwks_uri": f"{origin}/op/v1/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


async def discovery(request: Request) -> Response:
    return JSONResponse(discovery_document(_origin(request, request.app.state.emulator)))


async def jwks(request: Request) -> Response:
    return JSONResponse({"keys": []})


def _with_params(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _consent(core: EmulatorCore, client_id: str, hint: str | None) -> PendingConsent:
    for index, pending in enumerate(core.pending_consent):
        if pending.client_id in (None, client_id):
            return core.pending_consent.pop(index)
    if hint and hint in core.companies:
        return PendingConsent(hint)
    if core.companies:
        return PendingConsent(next(iter(core.companies)))
    return PendingConsent(core.create_company().realm_id)


async def authorize(request: Request) -> Response:
    core: EmulatorCore = request.app.state.emulator
    params = request.query_params
    app = core.oauth.apps.get(params.get("client_id", ""))
    if app is None:
        return HTMLResponse("<h1>invalid_client</h1><p>Unknown client_id.</p>", status_code=400)
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not core.oauth.redirect_allowed(app, redirect_uri):
        return HTMLResponse("<h1>invalid_request</h1><p>The redirect_uri is not registered.</p>", status_code=400)
    state = params.get("state", "")
    back: dict[str, str] = {"state": state} if state else {}
    if params.get("response_type") != "code":
        return RedirectResponse(_with_params(redirect_uri, {"error": "unsupported_response_type", **back}), 302)
    scopes = params.get("scope", "").split()
    if not scopes or any(scope not in KNOWN_SCOPES for scope in scopes):
        return RedirectResponse(_with_params(redirect_uri, {"error": "invalid_scope", **back}), 302)
    consent = _consent(core, app.client_id, params.get("realmId"))
    if consent.deny or consent.realm_id is None:
        return RedirectResponse(_with_params(redirect_uri, {"error": "access_denied", **back}), 302)
    code = core.oauth.issue_code(app, redirect_uri, consent.realm_id, scopes)
    return RedirectResponse(
        _with_params(redirect_uri, {"code": code, "state": state, "realmId": consent.realm_id}), 302
    )


def _oauth_error(error: OAuthError) -> Response:
    return JSONResponse({"error": error.error}, status_code=error.status, headers=_NO_STORE)


async def _token_fault(core: EmulatorCore, app: AppRegistration) -> tuple[Response | None, bool]:
    """An injected token-endpoint fault: ``(response to send now, drop after applying?)``."""
    rule = core.chaos.pick(None, app.client_id, "token", None)
    if rule is None:
        return None, False
    if rule.kind == "drop":
        return (None, True) if rule.after_write else (DroppedResponse(), False)
    if rule.kind == "timeout":
        await asyncio.sleep(min(rule.hold_s, core.config.timeout_hold_max_s))
        return html_error_response(504), False
    if rule.kind in ("unauthorized", "revoke"):
        return JSONResponse({"error": "invalid_client"}, status_code=401, headers=_NO_STORE), False
    return html_error_response(rule.status if rule.kind == "http_error" else 503), False


async def token(request: Request) -> Response:
    core: EmulatorCore = request.app.state.emulator
    try:
        app = core.oauth.authenticate_client(request.headers.get("authorization"))
    except OAuthError as error:
        return _oauth_error(error)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _oauth_error(OAuthError(400, "invalid_request"))
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    hard = request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true"
    injected, drop = await _token_fault(core, app)
    if injected is not None:
        return injected
    grant_type = form.get("grant_type")
    try:
        if grant_type == "authorization_code":
            if "code" not in form or "redirect_uri" not in form:
                raise OAuthError(400, "invalid_request")
            _, body = core.oauth.exchange_code(app, form["code"], form["redirect_uri"], hard)
        elif grant_type == "refresh_token":
            if "refresh_token" not in form:
                raise OAuthError(400, "invalid_request")
            _, body = core.oauth.refresh(app, form["refresh_token"], hard)
        else:
            raise OAuthError(400, "unsupported_grant_type")
    except OAuthError as error:
        return _oauth_error(error)
    core.persist_oauth()
    response = JSONResponse(body, headers=_NO_STORE)
    return DroppedResponse(response) if drop else response


async def revoke(request: Request) -> Response:
    core: EmulatorCore = request.app.state.emulator
    try:
        app = core.oauth.authenticate_client(request.headers.get("authorization"))
    except OAuthError as error:
        return _oauth_error(error)
    raw = (await request.body()).decode("utf-8", "replace")
    value: Any = None
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value = json.loads(raw).get("token")
        except (json.JSONDecodeError, AttributeError):
            value = None
    else:
        tokens = parse_qs(raw).get("token")
        value = tokens[0] if tokens else None
    if not isinstance(value, str) or not value:
        return _oauth_error(OAuthError(400, "invalid_request"))
    core.oauth.revoke_token(app, value)
    core.persist_oauth()
    return Response(b"", status_code=200)


async def userinfo(request: Request) -> Response:
    core: EmulatorCore = request.app.state.emulator
    check = core.oauth.check_access(request.headers.get("authorization"))
    if check.grant is None:
        return unauthorized_response(core.clock.now(), None)
    grant = check.grant
    if "openid" not in grant.scopes:
        return JSONResponse({"error": "insufficient_scope"}, status_code=403)
    company = core.company(grant.realm_id)
    subject = uuid.UUID(hashlib.sha256(f"{grant.client_id}:{grant.realm_id}".encode()).hexdigest()[:32])
    info: dict[str, Any] = {"sub": str(subject)}
    if "email" in grant.scopes:
        info.update(email=company.settings.email if company else "owner@example.com", emailVerified=True)
    if "profile" in grant.scopes:
        info.update(givenName="Sandbox", familyName="Owner")
    if "phone" in grant.scopes:
        info.update(phoneNumber="+1 6505550100", phoneNumberVerified=False)
    if "address" in grant.scopes:
        info["address"] = {
            "streetAddress": "2600 Marine Way",
            "locality": "Mountain View",
            "region": "CA",
            "postalCode": "94043",
            "country": "US",
        }
    return JSONResponse(info)


routes = [
    Route("/.well-known/openid_configuration", discovery, methods=["GET"]),
    Route("/.well-known/openid_configuration/", discovery, methods=["GET"]),
    Route("/.well-known/openid_sandbox_configuration", discovery, methods=["GET"]),
    Route("/.well-known/openid_sandbox_configuration/", discovery, methods=["GET"]),
    Route("/op/v1/jwks", jwks, methods=["GET"]),
    Route("/connect/oauth2", authorize, methods=["GET"]),
    Route("/oauth2/v1/tokens/bearer", token, methods=["POST"]),
    Route("/v2/oauth2/tokens/revoke", revoke, methods=["POST"]),
    Route("/v1/openid_connect/userinfo", userinfo, methods=["GET"]),
]
