"""The connected company, read once at connect time through the QBO client: its name, and proof of its realm.

The ``realmId`` of the OAuth callback travels in the browser's URL and is not signed by Intuit. Reading the company
with the tokens just received settles it: QBO answers 403 (or 401) when the token does not belong to that realm,
and the connect is refused — nobody can bind an organization to another company's id. The name ("Demo Company",
not realm 9130…) goes into ``QboConnected`` and the status API. One attempt with a short timeout: a slow or failing
QBO leaves the name empty and does not fail the connect.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from qbsync.qbo import (
    AccessGrant,
    QboAuthenticationError,
    QboAuthLostError,
    QboClient,
    QboClientSettings,
    QboError,
    QboForbiddenError,
    TokenProvider,
)

__all__ = ["CompanyNames", "CompanyRefused"]

log = logging.getLogger("token_manager.company")


class CompanyRefused(Exception):
    """QBO refused the new token for the callback's realm: the realm is not the one that was authorised."""


class _JustIssued(TokenProvider):
    """The grants of callbacks in progress; a 401 is final (these tokens are seconds old)."""

    def __init__(self) -> None:
        self.grants: dict[UUID, AccessGrant] = {}

    async def get_grant(self, organization_id: UUID) -> AccessGrant:
        grant = self.grants.get(organization_id)
        if grant is None:
            raise QboAuthLostError("no fresh grant for this organization")
        return grant

    async def report_unauthorized(self, organization_id: UUID, grant: AccessGrant) -> AccessGrant:
        raise QboAuthLostError("QBO refused a token issued seconds ago")


class CompanyNames:
    def __init__(self, settings: QboClientSettings, *, timeout_seconds: float = 5.0) -> None:
        quick = settings.model_copy(
            update={
                "read_max_attempts": 1,
                "connect_timeout_s": min(settings.connect_timeout_s, timeout_seconds),
                "read_timeout_s": min(settings.read_timeout_s, timeout_seconds),
                "limiter_max_wait_s": timeout_seconds,
            }
        )
        self._grants = _JustIssued()
        self._qbo = QboClient(quick, self._grants)

    async def lookup(self, organization_id: UUID, realm_id: str, access_token: str, expires_at: datetime) -> str | None:
        """The company's name (None if QBO could not say); raises :class:`CompanyRefused` on 401/403."""
        self._grants.grants[organization_id] = AccessGrant(organization_id, realm_id, access_token, expires_at)
        try:
            info = await self._qbo.company(organization_id).company_info()
        except (QboForbiddenError, QboAuthenticationError, QboAuthLostError) as exc:
            raise CompanyRefused(f"QBO refused the new token for company {realm_id} ({type(exc).__name__})") from None
        except QboError as exc:
            log.info("company name of realm %s not read (%s); continuing without it", realm_id, type(exc).__name__)
            return None
        finally:
            self._grants.grants.pop(organization_id, None)
        name = info.get("CompanyName") or info.get("LegalName")
        return str(name)[:255] if name else None

    async def aclose(self) -> None:
        await self._qbo.aclose()
