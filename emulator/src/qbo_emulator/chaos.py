"""Injected faults and latency, set through the admin API.

A :class:`FaultRule` says *what* goes wrong (``kind``), *where* (company, OAuth app, operation, entity) and
*when*: the next N matching requests, every k-th one, with a probability (seeded RNG), inside a time window on
the emulator clock, or any combination (a rule with no trigger fires on every match inside its window). The
first rule that fires wins. Kinds:

* ``http_error`` — a 5xx; JSON SystemFault (code 10000) for 500 by default, the load balancer's HTML page for
  502/503/504 (facts §4);
* ``timeout`` — hold the request ``hold_s`` (bounded), then a 504 HTML page; nothing is written;
* ``drop`` — the connection is cut after the response has started; with ``after_write`` (default) the write
  *was* applied, so the client sees a transport error while the entity exists;
* ``unauthorized`` — a 401 storm (token looks invalid); ``revoke`` — the grant is revoked, then 401;
* ``throttle`` — a 429 regardless of the real rate.

Latency is lognormal from a median and a 99th percentile, per company, from a seeded RNG.
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from itertools import count
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qbo_emulator.clock import Clock
from qbo_emulator.config import LatencyConfig

__all__ = ["Chaos", "FaultKind", "FaultRule", "OperationName"]

FaultKind = Literal["http_error", "timeout", "drop", "unauthorized", "revoke", "throttle"]
OperationName = Literal[
    "create", "read", "update", "delete", "void", "query", "batch", "cdc", "send", "taxcode", "pdf", "token"
]

_Z_99 = 2.3263478740408408


class FaultRule(BaseModel):
    """One injected fault (admin API body for ``POST /_admin/faults``)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    realm_id: str | None = None
    client_id: str | None = None
    operation: OperationName | None = None
    entity: str | None = None
    """Lowercase entity segment (``invoice``, ``companyinfo``); ``None`` matches any."""
    status: int = Field(default=500, ge=500, le=599)
    body: Literal["json", "html"] | None = None
    hold_s: float = Field(default=30.0, ge=0)
    after_write: bool = True
    next_n: int | None = Field(default=None, ge=1)
    every_k: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0, le=1)
    start_at: datetime | None = None
    end_at: datetime | None = None
    id: str = ""
    matched: int = 0
    fired: int = 0

    @model_validator(mode="after")
    def _default_body(self) -> FaultRule:
        if self.body is None:
            self.body = "json" if self.status == 500 else "html"
        return self

    def matches(self, realm_id: str | None, client_id: str | None, operation: str, entity: str | None) -> bool:
        return (
            self.realm_id in (None, realm_id)
            and self.client_id in (None, client_id)
            and self.operation in (None, operation)
            and self.entity in (None, entity)
        )


class Chaos:
    """The live fault rules and per-company latency."""

    def __init__(self, clock: Clock, seed: int, default_latency: LatencyConfig) -> None:
        self._clock = clock
        self._seed = seed
        self._ids = count(1)
        self._rng = random.Random(seed)
        self.rules: list[FaultRule] = []
        self.default_latency = default_latency
        self.latency: dict[str, LatencyConfig] = {}
        self._latency_rng: dict[str, random.Random] = {}

    # ------------------------------------------------------------------ faults
    def add(self, rule: FaultRule) -> FaultRule:
        rule.id = f"fault-{next(self._ids)}"
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str | None = None) -> int:
        """Remove one rule (or all with ``None``); returns how many went."""
        before = len(self.rules)
        self.rules = [r for r in self.rules if rule_id is not None and r.id != rule_id]
        return before - len(self.rules)

    def pick(self, realm_id: str | None, client_id: str | None, operation: str, entity: str | None) -> FaultRule | None:
        """The rule that fires for this request, if any (counters move only for matching rules)."""
        now = self._clock.now()
        for rule in list(self.rules):
            if not rule.matches(realm_id, client_id, operation, entity):
                continue
            if (rule.start_at and now < rule.start_at) or (rule.end_at and now >= rule.end_at):
                continue
            rule.matched += 1
            if self._fires(rule):
                rule.fired += 1
                return rule
        return None

    def _fires(self, rule: FaultRule) -> bool:
        """Triggers are OR-ed; a rule without any trigger fires on every match."""
        if rule.next_n is None and rule.every_k is None and rule.probability is None:
            return True
        if rule.next_n is not None and rule.fired < rule.next_n:
            return True
        if rule.every_k is not None and rule.matched % rule.every_k == 0:
            return True
        return rule.probability is not None and self._rng.random() < rule.probability

    # ------------------------------------------------------------------ latency
    def set_latency(self, realm_id: str | None, config: LatencyConfig) -> None:
        if realm_id is None:
            self.default_latency = config
            self._latency_rng.clear()
        else:
            self.latency[realm_id] = config
            self._latency_rng.pop(realm_id, None)

    def delay_s(self, realm_id: str) -> float:
        """A latency sample (seconds) for one request to ``realm_id``."""
        config = self.latency.get(realm_id, self.default_latency)
        if config.median_ms <= 0:
            return 0.0
        rng = self._latency_rng.get(realm_id)
        if rng is None:
            rng = random.Random(f"{config.seed}:{realm_id}")
            self._latency_rng[realm_id] = rng
        sigma = 0.0
        if config.p99_ms and config.p99_ms > config.median_ms:
            sigma = math.log(config.p99_ms / config.median_ms) / _Z_99
        sample = math.exp(rng.gauss(math.log(config.median_ms), sigma)) if sigma else config.median_ms
        return min(sample, config.max_ms) / 1000.0
