"""token-manager's Prometheus metrics (default registry, ``qbsync_`` prefix, never an organization or realm label).

* ``qbsync_token_refreshes_total{outcome}`` — calls to Intuit's refresh grant: ``success``, ``invalid_grant``
  (the connection is lost) or ``error`` (Intuit unreachable, 5xx, our credentials refused...).
* ``qbsync_connections{status}`` — organizations per status (from the database, so every replica agrees).
* ``qbsync_refresh_token_min_expiry_seconds`` — seconds until the first refresh token of a connected organization
  stops working (rolling expiry or Intuit's hard cap); ``+Inf`` with no connection. Alert well ahead of 0.
* ``qbsync_connections_expiring_soon`` — connected organizations whose refresh token ends within
  ``refresh_token_warning_days``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from prometheus_client import Counter, Gauge

from token_manager.store import GaugeInputs

__all__ = [
    "CONNECTIONS",
    "EXPIRING_SOON",
    "REFRESHES",
    "REFRESH_TOKEN_MIN_EXPIRY",
    "RefreshOutcome",
    "publish_gauges",
]

RefreshOutcome = Literal["success", "invalid_grant", "error"]
_STATUSES = ("connected", "needs_reconnect", "disconnected")

REFRESHES = Counter("qbsync_token_refreshes_total", "Refresh-token grants sent to Intuit, by outcome.", ["outcome"])
CONNECTIONS = Gauge("qbsync_connections", "QuickBooks connections by status.", ["status"])
REFRESH_TOKEN_MIN_EXPIRY = Gauge(
    "qbsync_refresh_token_min_expiry_seconds",
    "Seconds until the first refresh token of a connected organization stops working (+Inf: none).",
)
EXPIRING_SOON = Gauge(
    "qbsync_connections_expiring_soon",
    "Connected organizations whose refresh token ends within the warning window.",
)

for _outcome in ("success", "invalid_grant", "error"):
    REFRESHES.labels(_outcome)  # every series exists from the start (rate() needs a zero)


def publish_gauges(inputs: GaugeInputs, *, now: datetime, warning: timedelta) -> None:
    for status in _STATUSES:
        CONNECTIONS.labels(status).set(inputs.by_status.get(status, 0))
    soonest = inputs.soonest_refresh_end
    REFRESH_TOKEN_MIN_EXPIRY.set(math.inf if soonest is None else (soonest - now).total_seconds())
    EXPIRING_SOON.set(sum(1 for end in inputs.ends if end - now < warning))
