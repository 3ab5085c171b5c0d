"""Fixtures for the client's contract tests: a company on the emulator served over real HTTP, a token provider
that refreshes through the emulator's OAuth endpoint (what token-manager does, minimally), and the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from qbsync.qbo import AccessGrant, QboAuthLostError, QboClient, QboClientSettings, QboCompany, TokenProvider

CLIENT_ID = "qbsync-dev-client"
CLIENT_SECRET = "qbsync-dev-secret"


class OAuthTokenProvider(TokenProvider):
    """Holds one organization's token pair; after a 401 refreshes once per token via the OAuth token endpoint."""

    def __init__(self, base_url: str, organization_id: UUID, realm_id: str, tokens: dict[str, Any]) -> None:
        self._base_url = base_url
        self.organization_id = organization_id
        self.realm_id = realm_id
        self._access = str(tokens["access_token"])
        self._refresh = str(tokens["refresh_token"])
        self._expires = datetime.now(UTC) + timedelta(seconds=int(tokens.get("expires_in", 3600)))
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def get_grant(self, organization_id: UUID) -> AccessGrant:
        if organization_id != self.organization_id:
            raise QboAuthLostError("unknown organization")
        return AccessGrant(organization_id, self.realm_id, self._access, self._expires)

    async def report_unauthorized(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        async with self._lock:
            if grant.access_token == self._access:  # nobody refreshed this token yet
                await self._refresh_now()
        return await self.get_grant(organization_id)

    async def _refresh_now(self) -> None:
        async with httpx.AsyncClient(base_url=self._base_url, timeout=10.0) as http:
            response = await http.post(
                "/oauth2/v1/tokens/bearer",
                data={"grant_type": "refresh_token", "refresh_token": self._refresh},
                auth=(CLIENT_ID, CLIENT_SECRET),
                headers={"Accept": "application/json"},
            )
        if response.status_code != 200:
            raise QboAuthLostError(f"refresh refused: HTTP {response.status_code} {response.json().get('error')}")
        body = response.json()
        self._access, self._refresh = body["access_token"], body["refresh_token"]
        self._expires = datetime.now(UTC) + timedelta(seconds=int(body["expires_in"]))
        self.refreshes += 1


@dataclass
class Live:
    """One emulator company reached through the production client over real HTTP."""

    server: Any
    admin: httpx.AsyncClient
    realm_id: str
    organization_id: UUID
    tokens: OAuthTokenProvider
    client: QboClient
    company: QboCompany

    async def add_fault(self, **rule: Any) -> dict[str, Any]:
        response = await self.admin.post("/_admin/faults", json={"realm_id": self.realm_id, **rule})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def set_limits(self, **limits: Any) -> None:
        response = await self.admin.put("/_admin/limits", json=limits)
        assert response.status_code == 200, response.text

    async def rows(self, entity: str) -> list[dict[str, Any]]:
        response = await self.admin.get(f"/_admin/companies/{self.realm_id}/entities/{entity}")
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()[entity]
        return rows

    async def stats(self) -> dict[str, Any]:
        response = await self.admin.get(f"/_admin/companies/{self.realm_id}/stats")
        assert response.status_code == 200, response.text
        stats: dict[str, Any] = response.json()
        return stats


def client_settings(base_url: str, **overrides: Any) -> QboClientSettings:
    return QboClientSettings(environment="emulator", base_url=base_url, **overrides)


@pytest.fixture
async def live(emulator_server: Any) -> AsyncIterator[Live]:
    realm_id = emulator_server.create_company()
    organization_id = uuid4()
    tokens = OAuthTokenProvider(
        emulator_server.base_url, organization_id, realm_id, emulator_server.issue_tokens(realm_id)
    )
    client = QboClient(client_settings(emulator_server.base_url, read_timeout_s=10.0), tokens)
    async with httpx.AsyncClient(base_url=emulator_server.base_url, timeout=10.0) as admin, client:
        yield Live(emulator_server, admin, realm_id, organization_id, tokens, client, client.company(organization_id))
