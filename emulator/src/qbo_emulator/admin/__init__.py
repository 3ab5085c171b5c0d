"""The admin API (JSON, under ``/_admin``, never under ``/v3``): set up, inspect and disturb the emulator.

Companies (create, switches, demo seed, inspect rows and request counters), OAuth shortcuts (issue tokens
without the browser step, revoke, expire, queue the next consent), the accountant's actions (payments, refunds,
price changes, deactivation, voids — through the same write path as the API, so CDC and webhooks see them),
faults, latency, limits, webhooks, the clock, and reset. No authentication: the emulator binds loopback.
"""

from qbo_emulator.admin import companies, operations
from qbo_emulator.admin.common import Endpoint

__all__ = ["ENDPOINTS", "routes"]

ENDPOINTS: list[Endpoint] = [*companies.ENDPOINTS, *operations.ENDPOINTS]
routes = [endpoint.route() for endpoint in ENDPOINTS]
