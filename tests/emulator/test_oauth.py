"""Intuit OAuth 2.0 as the emulator implements it (facts §1): codes, grants, rotation, revocation, 401/403."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from qbo_emulator import DEV_CLIENT_ID, DEV_CLIENT_SECRET, EmulatorConfig, OAuthConfig
from tests.emulator.helpers import Api
from tests.fixtures.emulator import EmulatorHandle

REDIRECT = "http://127.0.0.1:8000/callback"
SCOPE = "com.intuit.quickbooks.accounting"
DAY = 86_400


def basic(client_id: str = DEV_CLIENT_ID, secret: str = DEV_CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def authorize(client: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    params = {
        "client_id": DEV_CLIENT_ID,
        "response_type": "code",
        "scope": SCOPE,
        "redirect_uri": REDIRECT,
        "state": "xyz-state",
        **overrides,
    }
    return await client.get("/connect/oauth2", params=params)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


async def token_call(
    client: httpx.AsyncClient, form: dict[str, str], auth: str | None = None, **headers: str
) -> httpx.Response:
    return await client.post(
        "/oauth2/v1/tokens/bearer",
        data=form,
        headers={"Authorization": auth or basic(), "Accept": "application/json", **headers},
    )


async def exchange(client: httpx.AsyncClient, code: str, redirect: str = REDIRECT) -> httpx.Response:
    return await token_call(client, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect})


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await token_call(client, {"grant_type": "refresh_token", "refresh_token": refresh_token})


async def connect(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    params = redirect_params(await authorize(client))
    response = await exchange(client, params["code"])
    assert response.status_code == 200, response.text
    return params["realmId"], response.json()


async def test_discovery_documents_point_at_the_emulator_itself(emulator_client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid_configuration/", "/.well-known/openid_sandbox_configuration"):
        doc = (await emulator_client.get(path)).json()
        assert doc["token_endpoint"] == "http://qbo.test/oauth2/v1/tokens/bearer"
        assert doc["authorization_endpoint"] == "http://qbo.test/connect/oauth2"
        assert doc["revocation_endpoint"] == "http://qbo.test/v2/oauth2/tokens/revoke"
        assert doc["userinfo_endpoint"] == "http://qbo.test/v1/openid_connect/userinfo"


async def test_authorize_redirects_with_code_state_and_the_first_company(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    first = emulator.create_company(name="First")
    emulator.create_company(name="Second")
    params = redirect_params(await authorize(emulator_client))
    assert params["state"] == "xyz-state"
    assert params["realmId"] == first
    assert params["code"].startswith("AB11")


async def test_realm_hint_and_admin_consent_choose_the_company(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    emulator.create_company(name="First")
    second = emulator.create_company(name="Second")
    third = emulator.create_company(name="Third")
    assert redirect_params(await authorize(emulator_client, realmId=second))["realmId"] == second
    queued = await emulator_client.post("/_admin/oauth/consent", json={"realm_id": third})
    assert queued.status_code == 201
    assert redirect_params(await authorize(emulator_client, realmId=second))["realmId"] == third
    await emulator_client.post("/_admin/oauth/consent", json={"deny": True})
    assert redirect_params(await authorize(emulator_client))["error"] == "access_denied"


async def test_authorize_creates_a_sandbox_company_when_there_is_none(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    realm = redirect_params(await authorize(emulator_client))["realmId"]
    assert emulator.core.company(realm) is not None


async def test_authorize_rejects_unknown_clients_redirects_and_scopes(emulator_client: httpx.AsyncClient) -> None:
    assert (await authorize(emulator_client, client_id="nobody")).status_code == 400
    assert (await authorize(emulator_client, redirect_uri="https://evil.example/cb")).status_code == 400
    assert redirect_params(await authorize(emulator_client, scope="com.intuit.bogus"))["error"] == "invalid_scope"
    refused = redirect_params(await authorize(emulator_client, response_type="token"))
    assert refused["error"] == "unsupported_response_type"
    assert refused["state"] == "xyz-state"


async def test_code_exchange_returns_intuit_token_shape(emulator_client: httpx.AsyncClient) -> None:
    _, tokens = await connect(emulator_client)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] == 8_726_400
    assert tokens["refresh_token"].startswith("AB11")
    assert len(tokens["access_token"]) > 500
    assert "x_refresh_token_hard_expires_in" not in tokens


async def test_codes_are_single_use_bound_to_redirect_and_expire(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    code = redirect_params(await authorize(emulator_client))["code"]
    assert (await exchange(emulator_client, code, "http://127.0.0.1:9/other")).json() == {"error": "invalid_grant"}
    code = redirect_params(await authorize(emulator_client))["code"]
    assert (await exchange(emulator_client, code)).status_code == 200
    reused = await exchange(emulator_client, code)
    assert (reused.status_code, reused.json()) == (400, {"error": "invalid_grant"})
    late = redirect_params(await authorize(emulator_client))["code"]
    emulator.core.clock.advance(601)
    assert (await exchange(emulator_client, late)).json() == {"error": "invalid_grant"}


async def test_bad_client_credentials_get_invalid_client(emulator_client: httpx.AsyncClient) -> None:
    code = redirect_params(await authorize(emulator_client))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    for auth in (basic(secret="wrong"), basic(client_id="other"), "Bearer x", "Basic !!!"):
        response = await token_call(emulator_client, form, auth=auth)
        assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})
    assert (await token_call(emulator_client, {"grant_type": "password"})).json() == {"error": "unsupported_grant_type"}


async def test_refresh_keeps_the_token_inside_24h_and_rotates_after(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    _, tokens = await connect(emulator_client)
    current = tokens["refresh_token"]
    seen = {current}
    for _day in range(10):  # ten "days" of hourly-ish refreshes
        emulator.core.clock.advance(6 * 3600)
        same = (await refresh(emulator_client, current)).json()
        assert same["refresh_token"] == current
        emulator.core.clock.advance(18 * 3600 + 1)
        rotated = (await refresh(emulator_client, current)).json()
        assert rotated["refresh_token"] != current
        assert rotated["refresh_token"] not in seen
        current = rotated["refresh_token"]
        seen.add(current)
    assert len(seen) == 11


async def test_superseded_refresh_token_fails_immediately_by_default(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    _, tokens = await connect(emulator_client)
    old = tokens["refresh_token"]
    emulator.core.clock.advance(DAY)
    new = (await refresh(emulator_client, old)).json()["refresh_token"]
    stale = await refresh(emulator_client, old)
    assert (stale.status_code, stale.json()) == (400, {"error": "invalid_grant"})
    assert (await refresh(emulator_client, new)).status_code == 200


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(oauth=OAuthConfig(superseded_grace_s=DAY))])
async def test_superseded_refresh_token_works_during_a_configured_grace(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    _, tokens = await connect(emulator_client)
    old = tokens["refresh_token"]
    emulator.core.clock.advance(DAY)
    new = (await refresh(emulator_client, old)).json()["refresh_token"]
    emulator.core.clock.advance(3600)
    inside = await refresh(emulator_client, old)
    assert inside.status_code == 200
    assert inside.json()["refresh_token"] == new
    emulator.core.clock.advance(DAY)
    assert (await refresh(emulator_client, old)).json() == {"error": "invalid_grant"}


async def test_refresh_window_rolls_and_lapses_after_101_idle_days(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    _, tokens = await connect(emulator_client)
    emulator.core.clock.advance(50 * DAY)
    used = (await refresh(emulator_client, tokens["refresh_token"])).json()
    assert used["x_refresh_token_expires_in"] == 8_726_400
    emulator.core.clock.advance(8_726_400 + 1)
    assert (await refresh(emulator_client, used["refresh_token"])).json() == {"error": "invalid_grant"}


async def test_hard_expiry_header_reports_the_five_year_cap(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    _, tokens = await connect(emulator_client)
    emulator.core.clock.advance(10 * DAY)
    response = await token_call(
        emulator_client,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        **{"x-include-refresh-token-hard-expires-in": "true"},
    )
    assert response.json()["x_refresh_token_hard_expires_in"] == 5 * 365 * DAY - 10 * DAY


async def test_expired_access_token_gets_the_json_3200_fault(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    realm, tokens = await connect(emulator_client)
    api = Api(emulator_client, realm, tokens["access_token"])
    assert (await api.get(f"companyinfo/{realm}")).status_code == 200
    emulator.core.clock.advance(3601)
    response = await api.get(f"companyinfo/{realm}")
    assert response.status_code == 401
    body = response.json()
    error = body["fault"]["error"][0]
    assert error["code"] == "3200"
    assert error["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    assert error["detail"].startswith("Token expired")
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert isinstance(body["time"], int)
    assert tokens["access_token"] not in response.text
    refreshed = (await refresh(emulator_client, tokens["refresh_token"])).json()
    assert (await Api(emulator_client, realm, refreshed["access_token"]).get(f"companyinfo/{realm}")).status_code == 200


async def test_unknown_and_missing_tokens_are_401(realm: str, emulator_client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": "Bearer not-a-token"}, {}, {"Authorization": "Basic abc"}):
        response = await emulator_client.get(f"/v3/company/{realm}/companyinfo/{realm}", headers=headers)
        assert response.status_code == 401
        assert response.json()["fault"]["error"][0]["code"] == "3200"


async def test_token_for_another_company_gets_403_3100(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    mine = emulator.create_company(name="Mine")
    theirs = emulator.create_company(name="Theirs")
    token = emulator.issue_tokens(mine)["access_token"]
    response = await Api(emulator_client, theirs, token).get(f"companyinfo/{theirs}")
    assert response.status_code == 403
    error = response.json()["fault"]["error"][0]
    assert error["code"] == "3100"
    assert "ApplicationAuthorizationFailed" in error["message"]


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_revoking_either_token_revokes_the_whole_grant(
    emulator_client: httpx.AsyncClient, which: str, encoding: str
) -> None:
    realm, tokens = await connect(emulator_client)
    headers = {"Authorization": basic(), "Accept": "application/json"}
    if encoding == "json":
        response = await emulator_client.post(
            "/v2/oauth2/tokens/revoke", json={"token": tokens[which]}, headers=headers
        )
    else:
        response = await emulator_client.post(
            "/v2/oauth2/tokens/revoke", data={"token": tokens[which]}, headers=headers
        )
    assert response.status_code == 200
    assert (await Api(emulator_client, realm, tokens["access_token"]).get(f"companyinfo/{realm}")).status_code == 401
    assert (await refresh(emulator_client, tokens["refresh_token"])).json() == {"error": "invalid_grant"}


async def test_revoke_requires_client_authentication(emulator_client: httpx.AsyncClient) -> None:
    _, tokens = await connect(emulator_client)
    response = await emulator_client.post(
        "/v2/oauth2/tokens/revoke",
        json={"token": tokens["refresh_token"]},
        headers={"Authorization": basic(secret="x")},
    )
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})
    assert (await refresh(emulator_client, tokens["refresh_token"])).status_code == 200


async def test_userinfo_answers_for_openid_scopes(emulator_client: httpx.AsyncClient) -> None:
    params = redirect_params(await authorize(emulator_client, scope=f"{SCOPE} openid email profile"))
    tokens = (await exchange(emulator_client, params["code"])).json()
    info = await emulator_client.get(
        "/v1/openid_connect/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 200
    assert info.json()["emailVerified"] is True
    assert "givenName" in info.json()


async def test_admin_can_expire_access_tokens_without_breaking_refresh(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    realm, tokens = await connect(emulator_client)
    expired = await emulator_client.post(f"/_admin/companies/{realm}/expire-access-tokens")
    assert expired.json()["expired_access_tokens"] == 1
    assert (await Api(emulator_client, realm, tokens["access_token"]).get(f"companyinfo/{realm}")).status_code == 401
    assert (await refresh(emulator_client, tokens["refresh_token"])).status_code == 200
