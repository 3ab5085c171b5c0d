"""A sequential integration with ``python-quickbooks`` 0.9.12, the way most integrations are first written: connect
through ``intuit-oauth``, then for each invoice build the library's ``Invoice`` and ``save()`` it, one after the
other. Nothing here is shipped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from quickbooks import QuickBooks
from quickbooks.objects.invoice import Invoice

from qbo_emulator import DEV_CLIENT_ID, DEV_CLIENT_SECRET
from qbsync.qbo.client import encode_json

__all__ = ["SequentialRun", "connect_library", "run_sequential"]

_REDIRECT = "http://localhost:5000/callback"


@dataclass
class SequentialRun:
    synced: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    call_seconds: list[float] = field(default_factory=list)

    def projected_seconds(self, invoices: int) -> float:
        """A call at a time: the measured mean per invoice, times the backlog (far below QBO's 500/min, so no
        throttling changes the picture)."""
        return invoices * self.elapsed_s / max(self.synced + self.failed, 1)


def connect_library(base_url: str, realm_id: str) -> QuickBooks:
    """intuit-oauth's code flow against the emulator, then a ``QuickBooks`` client on the emulator's v3 URL."""
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the emulator speaks plain HTTP on loopback
    auth = AuthClient(
        DEV_CLIENT_ID, DEV_CLIENT_SECRET, _REDIRECT, f"{base_url}/.well-known/openid_sandbox_configuration/"
    )
    requests.post(f"{base_url}/_admin/oauth/consent", json={"realm_id": realm_id}, timeout=30).raise_for_status()
    redirect = requests.get(auth.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False, timeout=30)
    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["Location"]).query).items()}
    auth.get_bearer_token(params["code"], realm_id=params["realmId"])
    client = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=realm_id, minorversion=75)
    client.api_url_v3 = f"{base_url}/v3"
    return client


def run_sequential(client: QuickBooks, bodies: Sequence[dict[str, Any]]) -> SequentialRun:
    """Save each invoice in turn; a failure is counted and the loop goes on."""
    run = SequentialRun()
    started = time.monotonic()
    for body in bodies:
        invoice = Invoice.from_json(json.loads(encode_json(body)))
        call = time.monotonic()
        try:
            invoice.save(qb=client)
        except Exception:  # the library raises its own hierarchy and requests' errors; either is a failed invoice
            run.failed += 1
        else:
            run.synced += 1
        run.call_seconds.append(time.monotonic() - call)
    run.elapsed_s = time.monotonic() - started
    return run
