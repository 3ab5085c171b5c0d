"""The OpenAPI 3.1 document served at ``/openapi.json``.

The admin API is described from the same endpoint table that builds its routes (request bodies from the
pydantic models, so the document cannot drift from the code). The v3 Accounting API and OAuth are described
coarsely — paths, methods, parameters and status codes — enough for a schemathesis run to find them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from qbo_emulator.admin import ENDPOINTS

__all__ = ["openapi_document"]

_JSON: Final = "application/json"
_ANY_OBJECT: Final = {"type": "object"}


def _parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _admin_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        operation: dict[str, Any] = {
            "tags": ["admin"],
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__,
            "parameters": _parameters(endpoint.path),
            "responses": {
                "200": {"description": "OK", "content": {_JSON: {"schema": _ANY_OBJECT}}},
                "201": {"description": "Created", "content": {_JSON: {"schema": _ANY_OBJECT}}},
                "400": {"description": "Invalid request"},
                "404": {"description": "Unknown company, entity or rule"},
            },
        }
        if endpoint.body is not None:
            schema = endpoint.body.model_json_schema()
            operation["requestBody"] = {"required": False, "content": {_JSON: {"schema": schema}}}
        paths.setdefault(f"/_admin{endpoint.path}", {})[endpoint.method.lower()] = operation
    return paths


def _v3_operation(summary: str, *, body: str | None = None, query: tuple[str, ...] = ()) -> dict[str, Any]:
    parameters = _parameters("{realmId}")
    parameters += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in query]
    operation: dict[str, Any] = {
        "tags": ["accounting"],
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": parameters,
        "responses": {
            "200": {"description": "Wrapped entity / QueryResponse / BatchItemResponse / CDCResponse"},
            "400": {"description": "QBO Fault (ValidationFault)"},
            "401": {"description": "AuthenticationFailed (3200)"},
            "403": {"description": "ApplicationAuthorizationFailed (3100)"},
            "429": {"description": "ThrottleExceeded (3001)"},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {body: {"schema": _ANY_OBJECT}}}
    return operation


def _v3_paths() -> dict[str, Any]:
    base = "/v3/company/{realmId}"
    writes = ("minorversion", "requestid", "operation", "include")
    return {
        f"{base}/{{entity}}": {
            "post": _v3_operation("Create, update, delete or void an entity", body=_JSON, query=writes)
        },
        f"{base}/{{entity}}/{{id}}": {"get": _v3_operation("Read an entity", query=("minorversion",))},
        f"{base}/query": {
            "get": _v3_operation("Run a query", query=("query", "minorversion")),
            "post": _v3_operation("Run a query (text body)", body="application/text", query=("minorversion",)),
        },
        f"{base}/batch": {"post": _v3_operation("Up to 30 operations", body=_JSON, query=("requestid",))},
        f"{base}/cdc": {"get": _v3_operation("Change data capture", query=("entities", "changedSince"))},
        f"{base}/companyinfo/{{id}}": {"get": _v3_operation("Company information")},
        f"{base}/preferences": {"get": _v3_operation("Preferences"), "post": _v3_operation("Update", body=_JSON)},
        f"{base}/taxservice/taxcode": {"post": _v3_operation("Create a tax code and its rates", body=_JSON)},
    }


def _oauth_paths() -> dict[str, Any]:
    form = "application/x-www-form-urlencoded"
    return {
        "/.well-known/openid_configuration": {
            "get": {"tags": ["oauth"], "summary": "Discovery document", "responses": {"200": {"description": "OK"}}}
        },
        "/connect/oauth2": {
            "get": {
                "tags": ["oauth"],
                "summary": "Authorize (redirects with code, state, realmId)",
                "responses": {"302": {"description": "Redirect"}, "400": {"description": "Bad"}},
            }
        },
        "/oauth2/v1/tokens/bearer": {
            "post": {
                "tags": ["oauth"],
                "summary": "Token endpoint (authorization_code, refresh_token)",
                "requestBody": {"content": {form: {"schema": _ANY_OBJECT}}},
                "responses": {
                    "200": {"description": "Tokens"},
                    "400": {"description": "invalid_grant"},
                    "401": {"description": "invalid_client"},
                },
            }
        },
        "/v2/oauth2/tokens/revoke": {
            "post": {
                "tags": ["oauth"],
                "summary": "Revoke a grant by either token",
                "requestBody": {"content": {_JSON: {"schema": _ANY_OBJECT}, form: {"schema": _ANY_OBJECT}}},
                "responses": {"200": {"description": "Revoked"}, "401": {"description": "invalid_client"}},
            }
        },
        "/v1/openid_connect/userinfo": {
            "get": {"tags": ["oauth"], "summary": "OpenID userinfo", "responses": {"200": {"description": "Claims"}}}
        },
    }


def openapi_document() -> dict[str, Any]:
    """The whole document (built on each call; it is small)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qbo-emulator",
            "version": "0.1.0",
            "description": "QuickBooks Online Accounting API v3 + Intuit OAuth 2.0 emulator; admin API under /_admin.",
        },
        "paths": {
            **_oauth_paths(),
            **_v3_paths(),
            **_admin_paths(),
            "/health": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
