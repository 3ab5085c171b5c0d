"""The chaos schedule: seeded SIGKILLs of every service and bounded emulator fault episodes, counted by kind.

Every action is drawn from one ``random.Random(seed)`` up front, so a run is reproducible from its profile: the
schedule is a sorted list of ``(second, action)``; the actions run one after the other (a kill waits for the restarted
process to answer ``/health`` before the next action starts), while fault rules clean themselves up after their
episode. Each fault rule is bounded twice — by ``next_n`` (the emulator stops firing it) and by a deletion after
``EPISODE_S`` — so nothing outlives the chaos phase. What fired is read back from the emulator before a rule is
deleted: the report counts faults the platform actually met, not faults that were asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from tests.reliability.processes import ProcessSet
from tests.reliability.scenario import Profile

__all__ = ["FAULT_KINDS", "SERVICES", "Action", "Chaos", "schedule"]

SERVICES: Final = ("token-manager", "customer-sync", "invoice-sync", "pull-sync")
#: Seconds a fault rule stays installed (its ``next_n`` usually runs out earlier).
EPISODE_S: Final = 6.0

#: Fault kind (as reported) -> the emulator rule(s) of one episode.
FAULT_KINDS: Final[dict[str, list[dict[str, Any]]]] = {
    "outage_503_json": [{"kind": "http_error", "status": 503, "body": "json", "next_n": 12}],
    "outage_502_html": [{"kind": "http_error", "status": 502, "body": "html", "next_n": 12}],
    "http_500": [{"kind": "http_error", "status": 500, "next_n": 6}],
    "timeout": [{"kind": "timeout", "hold_s": 2.0, "next_n": 3}],
    "throttle_429": [{"kind": "throttle", "next_n": 20}],
    "drop_after_write": [
        {"kind": "drop", "operation": "create", "after_write": True, "next_n": 4},
        {"kind": "drop", "operation": "update", "after_write": True, "next_n": 2},
    ],
    "unauthorized_401": [{"kind": "unauthorized", "next_n": 6}],
    # Intuit's token endpoint fails while every access token of the company has just expired: the services' 401
    # reports make token-manager refresh, and those refreshes fail (no rotation happens: nothing may be lost).
    "refresh_failure": [{"kind": "http_error", "operation": "token", "status": 503, "next_n": 4}],
    "latency": [],  # PUT /_admin/latency, see Chaos._latency
}


@dataclass(frozen=True, slots=True)
class Action:
    at_s: float
    kind: str  # "kill", "fault", "revoke"
    target: str  # service name, fault kind, or realm
    realm: str | None = None


def schedule(profile: Profile, realms: list[str], *, start_s: float = 3.0) -> list[Action]:
    """Every kill and fault episode of a run, at seeded moments during publishing (and a little after)."""
    rng = random.Random(profile.seed * 7919 + 1)
    end_s = profile.publish_seconds * 1.15
    actions: list[Action] = []
    actions += [
        Action(rng.uniform(start_s, end_s), "kill", service)
        for service in SERVICES
        for _ in range(profile.kills_per_service)
    ]
    actions += [
        Action(rng.uniform(start_s, end_s), "fault", kind, rng.choice(realms))
        for kind in FAULT_KINDS
        for _ in range(profile.episodes_per_fault)
    ]
    for _ in range(profile.revocations):
        realm = rng.choice(realms)
        actions.append(Action(rng.uniform(start_s, end_s * 0.8), "revoke", realm, realm))
    return sorted(actions, key=lambda a: a.at_s)


@dataclass
class Chaos:
    """Runs a schedule against the processes and the emulator's admin API, and counts what it did."""

    processes: ProcessSet
    http: httpx.AsyncClient
    emulator_url: str
    #: Reconnects an organization's realm through token-manager's real connect flow.
    reconnect: Callable[[str], Awaitable[None]]
    #: Waits (bounded) until token-manager has noticed a revocation for the realm.
    wait_lost: Callable[[str], Awaitable[bool]]
    seed: int = 0
    faults_fired: Counter[str] = field(default_factory=Counter)
    episodes: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    revocations: int = 0
    revocations_noticed: int = 0
    _cleanups: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, actions: list[Action], clock_start: float) -> None:
        loop = asyncio.get_running_loop()
        for action in actions:
            delay = clock_start + action.at_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if action.kind == "kill":
                await self._kill(action.target, random.Random(f"{self.seed}/{action.at_s}").uniform(0.2, 2.5))
            elif action.kind == "fault":
                assert action.realm is not None
                await self._fault(action.target, action.realm)
            else:
                self._cleanups.append(asyncio.create_task(self._revoke(action.target)))

    async def finish(self) -> None:
        """Wait for every pending cleanup (fault removal, reconnect) and remove whatever is left."""
        if self._cleanups:
            await asyncio.gather(*self._cleanups)
        await self._admin("PUT", "/latency", json={"median_ms": 0, "max_ms": 0, "seed": 0})
        for rule in await self._admin("GET", "/faults"):
            self.faults_fired[_kind_of(rule)] += int(rule["fired"])
        await self._admin("DELETE", "/faults")

    # ---- actions --------------------------------------------------------------------------------------------------
    async def _kill(self, service: str, down_s: float) -> None:
        await self.processes.kill(service)
        self.kills[service] += 1
        await asyncio.sleep(down_s)
        await self.processes.start(service)

    async def _fault(self, kind: str, realm: str) -> None:
        self.episodes[kind] += 1
        if kind == "latency":
            await self._admin(
                "PUT", "/latency", json={"realm_id": realm, "median_ms": 300, "p99_ms": 1500, "max_ms": 2500, "seed": 1}
            )
            self._cleanups.append(asyncio.create_task(self._end_latency(realm)))
            return
        ids: list[str] = []
        for rule in FAULT_KINDS[kind]:
            # Intuit's token endpoint knows no company (a refresh names none): its faults cannot be scoped to one.
            scope = {} if rule.get("operation") == "token" else {"realm_id": realm}
            created = await self._admin("POST", "/faults", json={**rule, **scope})
            ids.append(str(created["id"]))
        if kind == "refresh_failure":
            await self._admin("POST", f"/companies/{realm}/expire-access-tokens")
        self._cleanups.append(asyncio.create_task(self._end_episode(ids)))

    async def _end_latency(self, realm: str) -> None:
        await asyncio.sleep(EPISODE_S)
        await self._admin("PUT", "/latency", json={"realm_id": realm, "median_ms": 0, "max_ms": 0, "seed": 0})
        self.faults_fired["latency"] += 1

    async def _end_episode(self, ids: list[str]) -> None:
        await asyncio.sleep(EPISODE_S)
        rules = {str(r["id"]): r for r in await self._admin("GET", "/faults")}
        for rule_id in ids:
            rule = rules.get(rule_id)
            if rule is not None:
                self.faults_fired[_kind_of(rule)] += int(rule["fired"])
                with contextlib.suppress(httpx.HTTPStatusError):
                    await self._admin("DELETE", f"/faults/{rule_id}")

    async def _revoke(self, realm: str) -> None:
        """Revoke the grant at 'Intuit', let the platform notice (services park), then reconnect."""
        await self._admin("POST", f"/companies/{realm}/revoke")
        self.revocations += 1
        self.faults_fired["revocation"] += 1
        if await self.wait_lost(realm):
            self.revocations_noticed += 1
        await self.reconnect(realm)

    async def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, f"{self.emulator_url}/_admin{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


def _kind_of(rule: dict[str, Any]) -> str:
    """The report's fault kind of an emulator rule."""
    kind = str(rule["kind"])
    if kind == "http_error":
        if rule.get("operation") == "token":
            return "refresh_failure"
        status = int(rule["status"])
        return {
            503: "outage_503_json" if rule.get("body") == "json" else "outage_503_html",
            502: "outage_502_html",
        }.get(status, f"http_{status}")
    return {
        "throttle": "throttle_429",
        "drop": "drop_after_write",
        "unauthorized": "unauthorized_401",
    }.get(kind, kind)
