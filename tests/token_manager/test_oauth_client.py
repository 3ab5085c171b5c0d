"""Unit tests of the Intuit OAuth client over ``httpx.MockTransport``: what it sends, and how every kind of answer
becomes a typed error that never carries a token, a code or the client secret."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from token_manager.oauth import (
    IntuitOAuthClient,
    OAuthClientError,
    OAuthError,
    OAuthGrantError,
    OAuthProtocolError,
    OAuthUnavailableError,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REFRESH = "AB11refresh-token-value-0123456789"
SECRET = "client-secret-value"
DISCOVERY = {
    "authorization_endpoint": "https://intuit.test/connect/oauth2",
    "token_endpoint": "https://intuit.test/oauth2/v1/tokens/bearer",
    "revocation_endpoint": "https://intuit.test/v2/oauth2/tokens/revoke",
}

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, seen: list[httpx.Request] | None = None) -> IntuitOAuthClient:
    def route(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if request.url.path == "/.well-known/openid_configuration":
            return httpx.Response(200, json=DISCOVERY)
        return handler(request)

    return IntuitOAuthClient(
        client_id="app-id",
        client_secret=SECRET,
        redirect_uri="https://sync.example/oauth/callback",
        scopes=("com.intuit.quickbooks.accounting",),
        discovery_url="https://intuit.test/.well-known/openid_configuration",
        clock=lambda: NOW,
        transport=httpx.MockTransport(route),
    )


def _tokens(**extra: object) -> httpx.Response:
    body = {
        "token_type": "bearer",
        "access_token": "access-1",
        "refresh_token": "AB11new",
        "expires_in": 3600,
        "x_refresh_token_expires_in": 8_726_400,
        **extra,
    }
    return httpx.Response(200, json=body)


async def test_a_refresh_is_a_form_post_with_basic_auth_and_asks_for_the_hard_expiry() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: _tokens(x_refresh_token_hard_expires_in=157_680_000), seen)
    tokens = await client.refresh(REFRESH)
    await client.refresh(REFRESH)
    await client.aclose()
    discovery = [r for r in seen if "well-known" in r.url.path]
    assert len(discovery) == 1, "the discovery document is fetched once"
    request = seen[1]
    assert str(request.url) == DISCOVERY["token_endpoint"]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"app-id:{SECRET}".encode()).decode()
    assert request.headers["x-include-refresh-token-hard-expires-in"] == "true"
    assert request.headers["accept"] == "application/json"
    assert parse_qs(request.content.decode()) == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH]}
    assert tokens.access_token == "access-1"
    assert tokens.refresh_token == "AB11new"
    assert tokens.access_expires_at == NOW + timedelta(hours=1)
    assert tokens.refresh_expires_at == NOW + timedelta(seconds=8_726_400)
    assert tokens.hard_expires_at == NOW + timedelta(seconds=157_680_000)
    assert "access-1" not in repr(tokens)
    assert "AB11new" not in repr(tokens)


async def test_the_code_exchange_sends_the_registered_redirect_uri() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: _tokens(), seen)
    tokens = await client.exchange_code("the-code")
    await client.aclose()
    assert parse_qs(seen[-1].content.decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": ["https://sync.example/oauth/callback"],
    }
    assert tokens.hard_expires_at is None, "absent when Intuit does not send it"


async def test_the_authorization_url_carries_every_parameter() -> None:
    client = _client(lambda _: httpx.Response(500))
    url = urlsplit(await client.authorization_url("v1.state"))
    await client.aclose()
    assert f"{url.scheme}://{url.netloc}{url.path}" == DISCOVERY["authorization_endpoint"]
    assert {k: v[0] for k, v in parse_qs(url.query).items()} == {
        "client_id": "app-id",
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": "https://sync.example/oauth/callback",
        "state": "v1.state",
    }


async def test_revoke_posts_the_token_as_json_with_basic_auth() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: httpx.Response(200), seen)
    await client.revoke(REFRESH)
    await client.aclose()
    assert str(seen[-1].url) == DISCOVERY["revocation_endpoint"]
    assert json.loads(seen[-1].content) == {"token": REFRESH}
    assert seen[-1].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            httpx.Response(400, json={"error": "invalid_grant", "error_description": f"Token invalid: {REFRESH}"}),
            OAuthGrantError,
        ),
        (httpx.Response(401, json={"error": "invalid_client"}), OAuthClientError),
        (httpx.Response(400, json={"error": "unauthorized_client"}), OAuthClientError),
        (httpx.Response(400, json={"error": "invalid_request"}), OAuthProtocolError),
        (httpx.Response(400, json={"error": "unsupported_grant_type"}), OAuthProtocolError),
        (httpx.Response(503, text="<html><body>Service Unavailable</body></html>"), OAuthUnavailableError),
        (httpx.Response(500, json={"error": "server_error"}), OAuthUnavailableError),
        (httpx.Response(429, text=""), OAuthUnavailableError),
        (httpx.Response(200, text="<html>not json</html>"), OAuthUnavailableError),
        (httpx.Response(200, json=["not", "an", "object"]), OAuthUnavailableError),
        (httpx.Response(200, json={"access_token": "a", "expires_in": 3600}), OAuthUnavailableError),
        (
            httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "expires_in": "soon"}),
            OAuthUnavailableError,
        ),
        (
            httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "expires_in": -5}),
            OAuthUnavailableError,
        ),
    ],
)
async def test_every_answer_becomes_a_typed_error_without_secrets(
    answer: httpx.Response, error: type[OAuthError]
) -> None:
    client = _client(lambda _: answer)
    with pytest.raises(error) as raised:
        await client.refresh(REFRESH)
    await client.aclose()
    text = str(raised.value) + repr(raised.value)
    assert REFRESH not in text, "Intuit's free-text description is never copied"
    assert SECRET not in text


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")],
)
async def test_network_failures_are_unavailable(failure: Exception) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise failure

    client = _client(fail)
    with pytest.raises(OAuthUnavailableError):
        await client.refresh(REFRESH)
    await client.aclose()


async def test_a_failed_discovery_is_retried_on_the_next_call() -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if "well-known" in request.url.path:
            calls += 1
            return httpx.Response(503) if calls == 1 else httpx.Response(200, json=DISCOVERY)
        return _tokens()

    client = IntuitOAuthClient(
        client_id="app-id",
        client_secret=SECRET,
        redirect_uri="https://sync.example/oauth/callback",
        scopes=("com.intuit.quickbooks.accounting",),
        discovery_url="https://intuit.test/.well-known/openid_configuration",
        clock=lambda: NOW,
        transport=httpx.MockTransport(flaky),
    )
    with pytest.raises(OAuthUnavailableError):
        await client.refresh(REFRESH)
    assert (await client.refresh(REFRESH)).access_token == "access-1"
    await client.aclose()
