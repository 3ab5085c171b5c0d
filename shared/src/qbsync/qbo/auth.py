"""The access-token hook: how the client gets a bearer token without ever refreshing one itself.

Only token-manager talks to Intuit's OAuth endpoints (architecture §4). Every other service holds a
:class:`TokenProvider` that asks token-manager for the current grant and reports a 401 back to it; token-manager
decides whether to refresh (at most once per token, under a per-realm lock) or to declare the connection lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable
from uuid import UUID

from qbsync.qbo.errors import QboAuthLostError

__all__ = ["AccessGrant", "StaticTokenProvider", "TokenProvider"]

_REALM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class AccessGrant:
    """A usable access token for one organization's QBO company. The token never appears in ``repr``."""

    organization_id: UUID
    realm_id: str
    access_token: str = field(repr=False)
    expires_at: datetime

    def __post_init__(self) -> None:
        if not _REALM_ID.fullmatch(self.realm_id):  # it becomes a URL path segment
            raise ValueError("realm_id must be a plain company id (letters, digits, '-' or '_')")
        if not self.access_token:
            raise ValueError("access_token must not be empty")


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies access grants per organization; implemented by token-manager's client (and fakes in tests)."""

    async def get_grant(self, organization_id: UUID) -> AccessGrant:
        """The current grant. Raises :class:`QboAuthLostError` when the organization must reconnect."""
        ...

    async def report_unauthorized(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        """Called after QBO answered 401 to ``grant``; returns a fresh grant or raises :class:`QboAuthLostError`.

        The failed grant is passed so the provider can tell "this token is stale, refresh it" from "another caller
        already refreshed; here is the newer one" and refresh at most once per token.
        """
        ...


class StaticTokenProvider(TokenProvider):
    """Fixed tokens per organization, for tests and single-company tools. It cannot refresh: a 401 is final."""

    def __init__(self, grants: Mapping[UUID, tuple[str, str]], *, lifetime: timedelta = timedelta(hours=1)) -> None:
        self._grants = {
            org: AccessGrant(org, realm, token, datetime.now(UTC) + lifetime) for org, (realm, token) in grants.items()
        }

    async def get_grant(self, organization_id: UUID) -> AccessGrant:
        try:
            return self._grants[organization_id]
        except KeyError:
            raise QboAuthLostError(f"no QBO connection for organization {organization_id}") from None

    async def report_unauthorized(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        raise QboAuthLostError(
            f"QBO refused the static token of organization {organization_id}; a static provider cannot refresh"
        )
