"""``qbsync connect`` / ``disconnect`` / ``connections``: QuickBooks connections through token-manager's API.

qbsync connect ORG_ID            print the consent URL to open in a browser (valid for state_ttl_seconds)
qbsync connect ORG_ID --follow   headless, emulator only: follow the consent redirect and the callback here
qbsync disconnect ORG_ID         revoke at Intuit and forget the tokens
qbsync connections               every organization's status, realm, expiries, last refresh, last error

The commands authenticate with the service credential (``QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN``) and reach
token-manager at ``QBSYNC_TOKEN_MANAGER__URL``. They never print a token: the API never returns a refresh token and
these commands do not ask for access tokens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import httpx
import typer
from rich.console import Console
from rich.table import Table

from qbsync.settings import Settings
from qbsync.tokens.api import (
    ConnectionListBody,
    DisconnectBody,
    ErrorBody,
    connect_path,
    connections_path,
    disconnect_path,
)

__all__ = ["connect", "disconnect", "list_connections"]

console = Console()
err = Console(stderr=True)

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _client(settings: Settings) -> httpx.Client:
    tm = settings.token_manager
    return httpx.Client(
        base_url=tm.url.rstrip("/"),
        timeout=_TIMEOUT,
        follow_redirects=False,
        headers={"Authorization": f"Bearer {tm.service_token.get_secret_value()}", "Accept": "application/json"},
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _explain(response: httpx.Response) -> str:
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValueError:
        return f"token-manager answered HTTP {response.status_code}"
    return f"{body.message} ({body.error}, HTTP {response.status_code})"


def connect(
    organization_id: Annotated[UUID, typer.Argument(help="The Batchly organization to connect.")],
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Emulator only: follow the consent redirect and complete the connect without a browser."
        ),
    ] = False,
) -> None:
    """Start connecting ORGANIZATION_ID to QuickBooks: print the consent URL (or, with --follow, finish it)."""
    settings = Settings()
    try:
        with _client(settings) as client:
            response = client.get(connect_path(organization_id))
            if response.status_code != 302 or "location" not in response.headers:
                raise _fail(_explain(response))
            authorize_url = response.headers["location"]
            if not follow:
                console.print("Open this URL in a browser to connect QuickBooks:", highlight=False)
                console.print(authorize_url, highlight=False, soft_wrap=True)
                return
            _follow(client, authorize_url)
    except httpx.TransportError as exc:
        raise _fail(f"token-manager unreachable at {settings.token_manager.url} ({type(exc).__name__})") from None


def _follow(client: httpx.Client, authorize_url: str) -> None:
    """Play the browser: the emulator consents at once and redirects to the callback with code, state, realmId."""
    consent = httpx.get(authorize_url, timeout=_TIMEOUT, follow_redirects=False)
    callback = consent.headers.get("location")
    if consent.status_code not in (302, 303) or not callback:
        raise _fail(
            "the consent page needs a person (a browser); --follow only works against the QBO emulator. "
            "Run without --follow and open the URL."
        )
    done = httpx.get(callback, timeout=_TIMEOUT, headers={"Accept": "application/json"})
    body: dict[str, Any] = done.json() if done.headers.get("content-type", "").startswith("application/json") else {}
    if done.status_code != 200:
        raise _fail(f"{body.get('message') or 'the callback failed'} ({body.get('error')}, HTTP {done.status_code})")
    name = body.get("company_name") or "(name unknown)"
    verb = "reconnected" if body.get("reconnected") else "connected"
    console.print(f"{body.get('organization_id')} {verb} to QuickBooks company {body.get('realm_id')} {name}")


def disconnect(
    organization_id: Annotated[UUID, typer.Argument(help="The Batchly organization to disconnect.")],
) -> None:
    """Disconnect ORGANIZATION_ID: revoke at Intuit, forget the tokens; its sync work parks until a reconnect."""
    settings = Settings()
    try:
        with _client(settings) as client:
            response = client.post(disconnect_path(organization_id))
    except httpx.TransportError as exc:
        raise _fail(f"token-manager unreachable at {settings.token_manager.url} ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise _fail(_explain(response))
    result = DisconnectBody.model_validate_json(response.content)
    note = "revoked at Intuit" if result.revoked_at_intuit else "Intuit unreachable: tokens forgotten, not revoked"
    console.print(f"{result.organization_id} disconnected ({note})", highlight=False)


def list_connections(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")] = False,
) -> None:
    """Every organization's QuickBooks connection: status, company, token expiries, last refresh, last error."""
    settings = Settings()
    try:
        with _client(settings) as client:
            response = client.get(connections_path())
    except httpx.TransportError as exc:
        raise _fail(f"token-manager unreachable at {settings.token_manager.url} ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise _fail(_explain(response))
    listing = ConnectionListBody.model_validate_json(response.content)
    if as_json:
        console.print_json(listing.model_dump_json())
        return
    connections = listing.connections
    table = Table(
        "organization", "status", "company", "access expires", "refresh token ends", "last refresh", "last error"
    )
    for item in connections:
        ends = [t for t in (item.refresh_token_expires_at, item.refresh_token_hard_expires_at) if t is not None]
        refresh_end = _when(min(ends)) if ends else "-"
        if item.refresh_token_expiring_soon:
            refresh_end += " (soon!)"
        table.add_row(
            str(item.organization_id),
            item.status,
            f"{item.company_name or '-'} ({item.realm_id})",
            _when(item.access_token_expires_at),
            refresh_end,
            _when(item.last_refresh_at),
            (item.last_error or "-")[:80],
        )
    console.print(table)
    console.print(f"{len(connections)} connection(s)", highlight=False)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
