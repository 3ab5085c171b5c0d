"""OpenAPI 3.0 descriptions of token-manager's HTTP API for the schemathesis fuzzer.

token-manager serves no OpenAPI document of its own (its models are ``qbsync.tokens.api``); this one describes the
routes of ``token_manager.api`` closely enough for schemathesis to generate requests for every one of them: path
parameters, query strings and JSON bodies, valid and not. The emulator serves its own (``/openapi.json``); the webhook
receiver takes one signed body, fuzzed by ``test_http_fuzz`` with a strategy that signs what it generates.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["TOKEN_MANAGER_OPENAPI"]

_ORG: Final = {
    "name": "organization_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_ANY: Final = {"description": "any answer; the fuzzer checks for server errors and leaks itself"}


def _get(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"parameters": list(parameters), "responses": {"default": _ANY}}}


TOKEN_MANAGER_OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.0.3",
    "info": {"title": "token-manager", "version": "1"},
    "paths": {
        "/health": _get(),
        "/metrics": _get(),
        "/connect/{organization_id}": _get(_ORG),
        "/oauth/callback": _get(
            *(
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in ("code", "state", "realmId", "error")
            )
        ),
        "/v1/organizations/{organization_id}/token": _get(_ORG),
        "/v1/organizations/{organization_id}/connection": _get(_ORG),
        "/v1/connections": _get(),
        "/v1/organizations/{organization_id}/token/unauthorized": {
            "post": {
                "parameters": [_ORG],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"fingerprint": {"type": "string"}},
                                "additionalProperties": True,
                            }
                        }
                    },
                },
                "responses": {"default": _ANY},
            }
        },
        "/v1/organizations/{organization_id}/disconnect": {
            "post": {"parameters": [_ORG], "responses": {"default": _ANY}}
        },
    },
}
