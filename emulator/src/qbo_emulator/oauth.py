"""Intuit OAuth 2.0 as a state machine: registered apps, codes, grants, rotation, revocation.

No HTTP here (``oauth_routes`` adapts it); every rule of facts §1 lives in this module:

* codes are single use and expire (10 min by default);
* a *grant* is one app's connection to one company. Its refresh token keeps its value while younger than the
  rotation period (24 h); a refresh after that returns a new value and supersedes the old one, which then fails
  with ``invalid_grant`` once the (configurable, default 0) grace has passed;
* the refresh window rolls (``x_refresh_token_expires_in`` restarts on each use) under a 5-year hard cap from the
  grant's first issue;
* revoking any token of a grant (access or refresh) revokes the whole grant.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from qbo_emulator import ids
from qbo_emulator.clock import Clock
from qbo_emulator.config import AppRegistration, OAuthConfig

__all__ = [
    "ACCOUNTING_SCOPE",
    "KNOWN_SCOPES",
    "AccessCheck",
    "Grant",
    "OAuthError",
    "OAuthService",
]

ACCOUNTING_SCOPE: Final = "com.intuit.quickbooks.accounting"
KNOWN_SCOPES: Final = frozenset(
    {
        ACCOUNTING_SCOPE,
        "com.intuit.quickbooks.payment",
        "com.intuit.quickbooks.payroll",
        "com.intuit.quickbooks.payroll.timetracking",
        "com.intuit.quickbooks.payroll.benefits",
        "openid",
        "profile",
        "email",
        "phone",
        "address",
        "intuit_name",
    }
)


class OAuthError(Exception):
    """An RFC 6749 error response: ``status`` and the ``error`` code Intuit returns."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@dataclass
class Grant:
    """One app's authorisation for one company, with its current refresh token."""

    grant_id: str
    client_id: str
    realm_id: str
    scopes: list[str]
    first_issued_at: float
    refresh_token: str
    refresh_issued_at: float
    refresh_expires_at: float
    superseded: dict[str, float] = field(default_factory=dict)
    revoked: bool = False


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    realm_id: str
    scopes: list[str]
    expires_at: float
    used: bool = False


@dataclass
class _Access:
    grant_id: str
    expires_at: float


AccessProblem = Literal["missing", "malformed", "expired", "revoked", "unknown"]


@dataclass(frozen=True)
class AccessCheck:
    """The outcome of presenting a bearer token: the grant, or why it was refused."""

    grant: Grant | None
    problem: AccessProblem | None = None


class OAuthService:
    """Apps, codes, grants and tokens for the whole emulator (all companies)."""

    def __init__(self, config: OAuthConfig, apps: list[AppRegistration], clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self.apps: dict[str, AppRegistration] = {app.client_id: app for app in apps}
        self.grants: dict[str, Grant] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh_index: dict[str, str] = {}
        self._access: dict[str, _Access] = {}
        self._issued = 0

    # ------------------------------------------------------------------ apps and redirects
    def authenticate_client(self, authorization: str | None) -> AppRegistration:
        """The app named by an HTTP Basic header, or ``OAuthError(401, "invalid_client")``."""
        if not authorization or not authorization.lower().startswith("basic "):
            raise OAuthError(401, "invalid_client")
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError(401, "invalid_client") from exc
        client_id, _, secret = decoded.partition(":")
        app = self.apps.get(client_id)
        if app is None or not hmac.compare_digest(app.client_secret.encode(), secret.encode()):
            raise OAuthError(401, "invalid_client")
        return app

    @staticmethod
    def redirect_allowed(app: AppRegistration, redirect_uri: str) -> bool:
        """Exact registered URIs, plus any loopback ``http`` URI when the app allows local development."""
        if redirect_uri in app.redirect_uris:
            return True
        if not app.allow_loopback_redirects:
            return False
        parts = urlsplit(redirect_uri)
        return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}

    # ------------------------------------------------------------------ authorization codes
    def issue_code(self, app: AppRegistration, redirect_uri: str, realm_id: str, scopes: list[str]) -> str:
        """A single-use code bound to the app, redirect URI, company and scopes."""
        now = self._clock.timestamp()
        self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now and not c.used}
        code = ids.auth_code()
        self._codes[code] = _Code(app.client_id, redirect_uri, realm_id, scopes, now + self._config.auth_code_ttl_s)
        return code

    def exchange_code(
        self, app: AppRegistration, code: str, redirect_uri: str, hard_expiry: bool
    ) -> tuple[Grant, dict[str, Any]]:
        """``authorization_code`` grant: a new grant and its token response."""
        pending = self._codes.get(code)
        now = self._clock.timestamp()
        if pending is None or pending.used or pending.client_id != app.client_id or pending.expires_at <= now:
            raise OAuthError(400, "invalid_grant")
        if pending.redirect_uri != redirect_uri:
            raise OAuthError(400, "invalid_grant")
        pending.used = True
        grant = self.new_grant(app.client_id, pending.realm_id, pending.scopes)
        return grant, self._token_response(grant, hard_expiry)

    # ------------------------------------------------------------------ grants and tokens
    def new_grant(self, client_id: str, realm_id: str, scopes: list[str]) -> Grant:
        """Create a grant with a fresh refresh token (used by the code exchange and the admin shortcut)."""
        now = self._clock.timestamp()
        self._issued += 1
        grant = Grant(
            grant_id=f"g{self._issued}-{secrets.token_hex(4)}",
            client_id=client_id,
            realm_id=realm_id,
            scopes=list(scopes),
            first_issued_at=now,
            refresh_token=ids.refresh_token(),
            refresh_issued_at=now,
            refresh_expires_at=now + min(self._config.refresh_token_ttl_s, self._config.hard_cap_s),
        )
        self.grants[grant.grant_id] = grant
        self._refresh_index[grant.refresh_token] = grant.grant_id
        return grant

    def issue_for(self, grant: Grant, hard_expiry: bool = False) -> dict[str, Any]:
        """A token response for an existing grant (admin shortcut after ``new_grant``)."""
        return self._token_response(grant, hard_expiry)

    def refresh(self, app: AppRegistration, token: str, hard_expiry: bool) -> tuple[Grant, dict[str, Any]]:
        """``refresh_token`` grant with rotation, grace, the rolling window and the hard cap."""
        grant = self._grant_for_refresh(app, token)
        now = self._clock.timestamp()
        hard_end = grant.first_issued_at + self._config.hard_cap_s
        if now >= grant.refresh_expires_at or now >= hard_end:
            raise OAuthError(400, "invalid_grant")
        if now - grant.refresh_issued_at >= self._config.rotation_period_s:
            self._rotate(grant, now)
        grant.refresh_expires_at = min(now + self._config.refresh_token_ttl_s, hard_end)
        return grant, self._token_response(grant, hard_expiry)

    def _grant_for_refresh(self, app: AppRegistration, token: str) -> Grant:
        grant_id = self._refresh_index.get(token)
        grant = self.grants.get(grant_id) if grant_id else None
        if grant is None or grant.revoked or grant.client_id != app.client_id:
            raise OAuthError(400, "invalid_grant")
        if token != grant.refresh_token:
            superseded_at = grant.superseded.get(token)
            now = self._clock.timestamp()
            if superseded_at is None or now - superseded_at >= self._config.superseded_grace_s:
                raise OAuthError(400, "invalid_grant")
        return grant

    def _rotate(self, grant: Grant, now: float) -> None:
        grant.superseded[grant.refresh_token] = now
        grant.refresh_token = ids.refresh_token()
        grant.refresh_issued_at = now
        self._refresh_index[grant.refresh_token] = grant.grant_id

    def _token_response(self, grant: Grant, hard_expiry: bool) -> dict[str, Any]:
        now = self._clock.timestamp()
        self._prune_access(now)
        token = ids.access_token()
        self._access[token] = _Access(grant.grant_id, now + self._config.access_token_ttl_s)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": token,
            "refresh_token": grant.refresh_token,
            "expires_in": self._config.access_token_ttl_s,
            "x_refresh_token_expires_in": max(0, round(grant.refresh_expires_at - now)),
        }
        if hard_expiry:
            hard_end = grant.first_issued_at + self._config.hard_cap_s
            body["x_refresh_token_hard_expires_in"] = max(0, round(hard_end - now))
        return body

    def _prune_access(self, now: float) -> None:
        if len(self._access) > 4096:
            self._access = {k: a for k, a in self._access.items() if a.expires_at > now}

    # ------------------------------------------------------------------ use and revocation
    def check_access(self, authorization: str | None) -> AccessCheck:
        """Resolve ``Authorization: Bearer …`` to its grant, or say why it fails (for the 401 detail)."""
        if not authorization:
            return AccessCheck(None, "missing")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return AccessCheck(None, "malformed")
        access = self._access.get(token.strip())
        if access is None:
            return AccessCheck(None, "unknown")
        grant = self.grants.get(access.grant_id)
        if grant is None or grant.revoked:
            return AccessCheck(None, "revoked")
        if access.expires_at <= self._clock.timestamp():
            return AccessCheck(None, "expired")
        return AccessCheck(grant)

    def revoke_token(self, app: AppRegistration, token: str) -> bool:
        """Revoke the grant owning ``token`` (access or refresh); unknown tokens are a no-op (RFC 7009)."""
        grant_id = self._refresh_index.get(token)
        if grant_id is None and token in self._access:
            grant_id = self._access[token].grant_id
        grant = self.grants.get(grant_id) if grant_id else None
        if grant is None or grant.client_id != app.client_id:
            return False
        grant.revoked = True
        return True

    def revoke_grants(self, realm_id: str, client_id: str | None = None) -> int:
        """Revoke every live grant for a company (optionally one app's): the admin / fault "disconnect"."""
        count = 0
        for grant in self.grants.values():
            if grant.realm_id == realm_id and not grant.revoked and client_id in (None, grant.client_id):
                grant.revoked = True
                count += 1
        return count

    def expire_access_tokens(self, realm_id: str) -> int:
        """Make every access token of a company expired now (refresh still works)."""
        now = self._clock.timestamp()
        count = 0
        for access in self._access.values():
            grant = self.grants.get(access.grant_id)
            if grant is not None and grant.realm_id == realm_id and access.expires_at > now:
                access.expires_at = now
                count += 1
        return count

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """Grants and live access tokens as plain data (the SQLite state file stores this)."""
        now = self._clock.timestamp()
        return {
            "grants": [asdict(g) for g in self.grants.values()],
            "access": {k: asdict(a) for k, a in self._access.items() if a.expires_at > now},
            "issued": self._issued,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Inverse of :meth:`snapshot`."""
        self.grants = {g["grant_id"]: Grant(**g) for g in data.get("grants", [])}
        self._refresh_index = {}
        for grant in self.grants.values():
            self._refresh_index[grant.refresh_token] = grant.grant_id
            for old in grant.superseded:
                self._refresh_index[old] = grant.grant_id
        self._access = {k: _Access(**a) for k, a in data.get("access", {}).items()}
        self._issued = int(data.get("issued", len(self.grants)))
