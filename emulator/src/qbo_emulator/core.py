"""The emulator's state and services, wired once: the object ``app.state.emulator`` exposes.

HTTP layers (``v3_routes``, ``oauth_routes``, ``admin_routes``) are thin adapters over this; tests drive it
in-process. Companies live in memory; with a state file they are also saved after every change and loaded at
start, so a demo survives a restart.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import httpx

from qbo_emulator import ids
from qbo_emulator.chaos import Chaos
from qbo_emulator.clock import Clock, resolve_timezone
from qbo_emulator.config import EmulatorConfig
from qbo_emulator.context import WriteContext
from qbo_emulator.demo import seed_demo
from qbo_emulator.limits import Limiter
from qbo_emulator.oauth import OAuthService
from qbo_emulator.persistence import StateFile
from qbo_emulator.replay import ReplayCache
from qbo_emulator.seed import new_company
from qbo_emulator.store import Company, CompanySettings
from qbo_emulator.webhooks import WebhookService

__all__ = ["EmulatorCore", "PendingConsent", "RealmStats"]

log = logging.getLogger(__name__)


@dataclass
class PendingConsent:
    """What the next browser consent answers (admin-set): which company, or a denial."""

    realm_id: str | None
    client_id: str | None = None
    deny: bool = False


@dataclass
class RealmStats:
    """Request counters per company (admin ``GET /_admin/companies/{realm}/stats``)."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    faults_injected: int = 0
    replays: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_operation": dict(sorted(self.by_operation.items())),
            "throttled": self.throttled,
            "faults_injected": self.faults_injected,
            "replays": self.replays,
        }


class EmulatorCore:
    """Companies, OAuth, limits, faults, replay cache, webhooks and the clock."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or Clock()
        self.companies: dict[str, Company] = {}
        self.oauth = OAuthService(self.config.oauth, self.config.apps, self.clock)
        self.limiter = Limiter(self.config.limits, self.clock)
        self.chaos = Chaos(self.clock, self.config.fault_seed, self.config.latency)
        self.replay = ReplayCache(self.config.fidelity, self.clock)
        self.webhooks = WebhookService(
            self.config.webhooks, self.clock, self.oauth.apps, self.zone_for, webhook_transport
        )
        self.stats: dict[str, RealmStats] = {}
        self.pending_consent: list[PendingConsent] = []
        self.state_file = StateFile(self.config.state_file) if self.config.state_file else None
        self._load_or_seed()

    # ------------------------------------------------------------------ companies
    def _load_or_seed(self) -> None:
        if self.state_file is not None:
            loaded = self.state_file.load(self.config.fidelity.name_case_insensitive)
            if loaded is not None:
                self.companies, state = loaded
                self.oauth.restore(state.get("oauth", {}))
                self.clock.advance(
                    max(0.0, float(state.get("clock_offset_s", 0.0)) - self.clock.offset.total_seconds())
                )
                log.info("loaded %d companies from the state file", len(self.companies))
                return
        for index in range(self.config.seed_demo):
            company = self.create_company(name=f"Demo Company {index + 1}" if index else "Demo Company")
            seed_demo(company, self.clock.now(), self.config.fidelity, seed=index)
            self.persist(company)

    def create_company(
        self,
        *,
        name: str = "Sandbox Company_US_1",
        realm_id: str | None = None,
        timezone: str | None = None,
        state: str = "CA",
        ast: bool = True,
        custom_txn_numbers: bool = True,
        duplicate_docnum_check: bool = True,
        country: str = "US",
    ) -> Company:
        """A new company with QBO's default lists (see ``seed.new_company``)."""
        realm = realm_id or ids.realm_id()
        if realm in self.companies:
            raise ValueError(f"company {realm} already exists")
        settings = CompanySettings(
            name=name,
            country=country,
            timezone=timezone or self.config.default_timezone,
            state=state,
            duplicate_docnum_check=duplicate_docnum_check,
        )
        company = new_company(
            realm, settings, self.clock.now(), self.config.fidelity, ast=ast, custom_txn_numbers=custom_txn_numbers
        )
        self.companies[realm] = company
        self.persist(company)
        return company

    def company(self, realm_id: str) -> Company | None:
        return self.companies.get(realm_id)

    def zone_for(self, realm_id: str) -> tzinfo:
        company = self.companies.get(realm_id)
        return company.zone if company is not None else resolve_timezone(self.config.default_timezone)

    def realm_stats(self, realm_id: str) -> RealmStats:
        return self.stats.setdefault(realm_id, RealmStats())

    # ------------------------------------------------------------------ writes
    def context(self, company: Company, allow_duplicate_docnum: bool = False) -> WriteContext:
        """A context for one operation; call :meth:`commit` with it after the operation succeeded."""
        return WriteContext(company, self.config.fidelity, self.clock.now(), allow_duplicate_docnum)

    def commit(self, ctx: WriteContext) -> None:
        """Publish an operation's change events and save what it changed."""
        if ctx.events:
            self.webhooks.publish(list(ctx.events))
        self.persist(ctx.company)
        horizon = ctx.now.timestamp() - (self.config.fidelity.cdc_lookback_days + 1) * 86_400
        if ctx.company.tombstones and ctx.company.tombstones[0].deleted_at < horizon:
            ctx.company.prune_tombstones(horizon)

    def persist(self, company: Company | None = None) -> None:
        """Write a company's changed rows (all companies when ``None``) and the OAuth state, if configured."""
        if self.state_file is None:
            return
        targets = [company] if company is not None else list(self.companies.values())
        self.state_file.save(targets, self._state())

    def persist_oauth(self) -> None:
        """Write only the emulator-wide state (after token-endpoint and revocation calls)."""
        if self.state_file is not None:
            self.state_file.save([], self._state())

    def _state(self) -> dict[str, Any]:
        return {"oauth": self.oauth.snapshot(), "clock_offset_s": self.clock.offset.total_seconds()}

    def reset(self) -> None:
        """Forget every company, token, fault, subscription and counter (the config stays)."""
        self.companies.clear()
        self.oauth.restore({})
        self.chaos.remove(None)
        self.chaos.latency.clear()
        self.replay.clear()
        self.limiter.reset()
        self.stats.clear()
        self.pending_consent.clear()
        for sub_id in list(self.webhooks.subscriptions):
            self.webhooks.unsubscribe(sub_id)
        self.webhooks.deliveries.clear()
        if self.state_file is not None:
            self.state_file.clear()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.webhooks.start()

    async def aclose(self) -> None:
        await self.webhooks.aclose()
        self.persist()
        if self.state_file is not None:
            self.state_file.close()
