"""One campaign run: the platform as separate processes, the traffic, the chaos, the payments, then the accounting.

Phases (all on one event loop, every wait bounded):

1. **set up** — the emulator (real limits on, a state file so its grants can be read back for the leak scan),
   token-manager, one QuickBooks company per organization with the catalog's items, each organization connected
   through token-manager's real connect flow, the emulator's webhooks pointed at pull-sync, then the three sync
   services;
2. **traffic under chaos** — the plan's records are produced at an even pace over ``publish_seconds`` while the
   chaos schedule SIGKILLs and restarts every service and runs the fault episodes and revocations;
3. **settle** — faults removed, every service up, every organization connected (a connection that was lost without
   a revocation is counted as a *lost token* and reconnected so its parked work can drain), then wait until every
   event has a terminal outcome;
4. **accountant** — QuickBooks' accountant pays the open balance of some synced invoices, Batchly asks for "Sync
   Payments Now" while pull-sync is killed once more, and each of them must come back as paid;
5. **books** — QuickBooks' rows, dead letters, connections and the secrets in use are read for the accounting pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from aiokafka import AIOKafkaProducer

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime.kafka import record_for
from qbsync.simulate import DEFAULT_CATALOG
from qbsync_cli.ops.manual import command_for
from tests.reliability.chaos import SERVICES, Chaos, schedule
from tests.reliability.observe import Books, DeadLetter, ResultLog, read_books, read_dead_letters
from tests.reliability.processes import ProcessSet
from tests.reliability.scenario import Plan, Profile, build_plan

__all__ = ["SERVICE_TOKEN", "Run", "final_outcomes", "is_terminal", "payment_status", "run_campaign"]

log = logging.getLogger("qbsync.reliability")

#: A test credential, scanned for in every log.
SERVICE_TOKEN = "reliability-service-token-7f3c"
SYNC_SERVICES = ("customer-sync", "invoice-sync", "pull-sync")
TERMINAL_STATUSES = frozenset({"ignored", "pending"})


@dataclass
class Run:
    """Everything the accounting pass needs, read from the outside at the end of a run."""

    profile: Profile
    plan: Plan
    realms: dict[UUID, str]
    results: ResultLog
    books: Books
    dead_letters: list[DeadLetter]
    chaos: Chaos
    connections: dict[UUID, dict[str, Any]]
    #: Organizations found disconnected at the end of chaos although nobody revoked them.
    lost_connections: list[UUID]
    #: Invoice (Batchly id) -> the payment status the accountant's payment must produce.
    accountant_paid: dict[UUID, str]
    accountant_payment_ids: set[tuple[str, str]]
    secrets: set[str]
    logs: dict[str, str]
    exit_codes: dict[str, int | None]
    crashes: dict[str, list[int]]
    unsettled: list[UUID]
    durations: dict[str, float] = field(default_factory=dict)


async def run_campaign(profile: Profile, bootstrap: str, workdir: Path) -> Run:
    plan = build_plan(profile)
    prefix = f"rel{int(time.time() * 1000) % 10**9:09d}."
    procs = ProcessSet(workdir, _base_env(bootstrap, prefix, workdir, profile))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            return await _Driver(profile, plan, procs, http, bootstrap, prefix, workdir).run()
    finally:
        procs.kill_all_now()


@dataclass
class _Driver:
    profile: Profile
    plan: Plan
    procs: ProcessSet
    http: httpx.AsyncClient
    bootstrap: str
    prefix: str
    workdir: Path
    realms: dict[UUID, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def emulator_url(self) -> str:
        return self.procs["qbo-emulator"].url

    @property
    def tm_url(self) -> str:
        return self.procs["token-manager"].url

    async def run(self) -> Run:
        started = time.monotonic()
        await self._set_up()
        results = ResultLog(self.bootstrap, self.prefix)
        await results.start()
        try:
            self.durations["set_up_s"] = time.monotonic() - started
            log.info(
                "set up in %.0fs; publishing %d records under chaos", time.monotonic() - started, len(self.plan.records)
            )
            chaos = Chaos(
                self.procs, self.http, self.emulator_url, self._reconnect_realm, self._wait_lost, self.profile.seed
            )
            mark = time.monotonic()
            watcher = asyncio.create_task(self._watch_tokens())
            loop_start = asyncio.get_running_loop().time()
            await asyncio.gather(
                self._publish(self.plan.records),
                chaos.run(schedule(self.profile, list(self.realms.values())), loop_start),
            )
            await chaos.finish()
            self.durations["chaos_s"] = time.monotonic() - mark
            mark = time.monotonic()
            log.info(
                "chaos over (%s kills, %s faults); settling",
                sum(chaos.kills.values()),
                sum(chaos.faults_fired.values()),
            )
            lost = await self._restore()
            unsettled = await self._settle(results)
            self.durations["settle_s"] = time.monotonic() - mark
            mark = time.monotonic()
            log.info("settled (%d without an outcome); the accountant pays", len(unsettled))
            paid, payment_ids = await self._accountant(results, unsettled)
            self.durations["accountant_s"] = time.monotonic() - mark
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            connections = await self._connections()
            books = await read_books(self.http, self.emulator_url, list(self.realms.values()))
            dead = await read_dead_letters(self.bootstrap, self.prefix, list(SYNC_SERVICES))
        finally:
            await results.stop()
        crashes = {p.name: list(p.crashes) for p in self.procs.processes.values()}
        exit_codes = await self.procs.stop_all()
        self.secrets |= self._emulator_secrets()
        self.durations["total_s"] = time.monotonic() - started
        return Run(
            self.profile,
            self.plan,
            dict(self.realms),
            results,
            books,
            dead,
            chaos,
            connections,
            lost,
            paid,
            payment_ids,
            self.secrets,
            {p.name: p.log.read_text(errors="replace") for p in self.procs.processes.values() if p.log.exists()},
            exit_codes,
            crashes,
            unsettled,
            self.durations,
        )

    # ---- 1. set up -----------------------------------------------------------------------------------------------
    async def _set_up(self) -> None:
        self.procs.define_emulator(
            "--log-level", "warning", "--state-file", str(self.workdir / "emulator.db"), "--webhook-compression", "0.05"
        )
        await self.procs.start("qbo-emulator")
        self.procs.base_env["QBSYNC_QBO__BASE_URL"] = self.emulator_url
        tm = self.procs.define_service("token-manager", {})
        tm.env["QBSYNC_TOKEN_MANAGER__URL"] = tm.url
        tm.env["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"{tm.url}/oauth/callback"
        self.procs.base_env["QBSYNC_TOKEN_MANAGER__URL"] = tm.url
        self.procs.base_env["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"{tm.url}/oauth/callback"
        await self.procs.start("token-manager")
        for org in self.plan.organizations:
            company = await self._admin("POST", "/companies", json={"name": org.payload.name})
            realm = str(company["realm_id"])
            self.realms[org.entity_id] = realm
            await self._create_catalog(realm)
            await self._connect(org.entity_id, realm)
        for name in SYNC_SERVICES:
            self.procs.define_service(name, {})
        await self._admin(
            "POST",
            "/webhooks",
            json={"url": f"{self.procs['pull-sync'].url}/webhooks/quickbooks", "format": "legacy"},
        )
        await asyncio.gather(*(self.procs.start(name) for name in SYNC_SERVICES))

    async def _create_catalog(self, realm: str) -> None:
        accounts = await self._admin("GET", f"/companies/{realm}/entities/Account")
        by_name = {a["Name"]: a["Id"] for a in accounts["Account"]}
        for item in DEFAULT_CATALOG:
            body = item.qbo_item_body(by_name)
            await self._admin(
                "POST",
                f"/companies/{realm}/accountant/write",
                json={"entity": "Item", "operation": "create", "body": body},
            )

    async def _connect(self, organization_id: UUID, realm: str) -> None:
        """The browser's connect flow (retried while token-manager is being restarted by the chaos)."""
        for attempt in range(30):
            try:
                await self._admin("POST", "/oauth/consent", json={"realm_id": realm})
                response = await self.http.get(
                    f"{self.tm_url}/connect/{organization_id}",
                    follow_redirects=True,
                    headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
                )
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(2.0, 0.3 * (attempt + 1)))
        raise AssertionError(f"could not connect {organization_id} to {realm}")

    async def _reconnect_realm(self, realm: str) -> None:
        organization_id = next(org for org, r in self.realms.items() if r == realm)
        await self._connect(organization_id, realm)

    async def _wait_lost(self, realm: str) -> bool:
        """Until token-manager reports the revoked connection lost (a service met the 401), at most 15 s."""
        organization_id = next(org for org, r in self.realms.items() if r == realm)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = await self._connection(organization_id)
            if status is not None and status.get("status") != "connected":
                return True
            await asyncio.sleep(0.3)
        return False

    # ---- 2. traffic ----------------------------------------------------------------------------------------------
    async def _publish(self, events: list[AnyEnvelope]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False, linger_ms=5)
        await producer.start()
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            pace = self.profile.publish_seconds / max(1, len(events))
            futures = []
            for index, event in enumerate(events):
                ahead = start + index * pace - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
                futures.append(await self._send(producer, event))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, event: AnyEnvelope) -> Any:
        record = record_for(event)
        return await producer.send(
            self.prefix + record.topic,
            record.value,
            key=record.key,
            headers=[(k, v.encode()) for k, v in record.headers.items()],
        )

    async def _watch_tokens(self) -> None:
        """Collect every access token token-manager hands out (they must appear in no log)."""
        while True:
            for organization_id in self.realms:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    response = await self.http.get(
                        f"{self.tm_url}/v1/organizations/{organization_id}/token", headers=self._auth()
                    )
                    if response.status_code == 200:
                        self.secrets.add(str(response.json()["access_token"]))
            await asyncio.sleep(1.0)

    # ---- 3. settle -----------------------------------------------------------------------------------------------
    async def _restore(self) -> list[UUID]:
        """Every service running, every organization connected; returns those that had lost their tokens."""
        for name in SERVICES:
            process = self.procs[name]
            if not process.running:
                popen = process.popen
                process.crashes.append(popen.returncode if popen is not None and popen.returncode is not None else -1)
                await self.procs.start(name)
        lost: list[UUID] = []
        for organization_id, realm in self.realms.items():
            status = await self._connection(organization_id)
            if status is None or status.get("status") != "connected":
                lost.append(organization_id)
                await self._connect(organization_id, realm)
        return lost

    async def _settle(self, results: ResultLog) -> list[UUID]:
        """Wait until every event that must end in a result has a terminal one; returns those that never did."""
        wanted = [e.event_id for e in self.plan.expectations.values() if e.expected != "recorded"]
        deadline = time.monotonic() + self.profile.settle_timeout_s
        while time.monotonic() < deadline:
            missing = [event_id for event_id in wanted if not _has_terminal(results.of(event_id))]
            if not missing:
                return []
            await asyncio.sleep(1.0)
        return [event_id for event_id in wanted if not _has_terminal(results.of(event_id))]

    # ---- 4. accountant -------------------------------------------------------------------------------------------
    async def _accountant(
        self, results: ResultLog, unsettled: list[UUID]
    ) -> tuple[dict[UUID, str], set[tuple[str, str]]]:
        """Pay the open balance of some synced invoices in QuickBooks; 'Sync Payments Now' must bring each back."""
        synced = results.synced_invoices()
        paid: dict[UUID, str] = {}
        payment_ids: set[tuple[str, str]] = set()
        for invoice_id, qbo_id in sorted(synced.items(), key=lambda kv: str(kv[0])):
            if len(paid) >= self.profile.accountant_payments:
                break
            realm = self.realms[self.plan.world.invoice(invoice_id).organization_id]
            row = (await self._admin("GET", f"/companies/{realm}/entities/Invoice/{qbo_id}"))["Invoice"]
            balance = Decimal(str(row["Balance"]))
            if balance <= 0 or Decimal(str(row["TotalAmt"])) <= 0:
                continue
            try:
                payment = await self._admin(
                    "POST",
                    f"/companies/{realm}/accountant/payments",
                    json={"customer_id": row["CustomerRef"]["value"], "amount": float(balance), "invoice_id": qbo_id},
                )
            except httpx.HTTPStatusError as exc:  # QuickBooks refuses a payment from a deactivated customer
                if exc.response.status_code != 400:
                    raise
                continue
            payment_ids.add((realm, str(payment["Payment"]["Id"])))
            paid[invoice_id] = "paid"
        if not paid or unsettled:
            return paid, payment_ids
        kill = asyncio.create_task(self._kill_once("pull-sync", after_s=1.0))
        await self._publish([command_for("payments", org, requested_by="reliability") for org in self.realms])
        await kill
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and any(payment_status(results, i) != s for i, s in paid.items()):
            await asyncio.sleep(1.0)
        return paid, payment_ids

    async def _kill_once(self, service: str, *, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await self.procs.kill(service)
        await asyncio.sleep(0.5)
        await self.procs.start(service)

    # ---- 5. books and secrets ------------------------------------------------------------------------------------
    async def _connections(self) -> dict[UUID, dict[str, Any]]:
        found: dict[UUID, dict[str, Any]] = {}
        for organization_id in self.realms:
            found[organization_id] = await self._connection(organization_id) or {}
        return found

    async def _connection(self, organization_id: UUID) -> dict[str, Any] | None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await self.http.get(
                f"{self.tm_url}/v1/organizations/{organization_id}/connection", headers=self._auth()
            )
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        return None

    def _emulator_secrets(self) -> set[str]:
        """Every refresh token (current and superseded) and live access token the emulator issued in this run."""
        found = {SERVICE_TOKEN, "qbsync-dev-secret", "qbsync-dev-verifier"}
        key_file = self.workdir / "data" / "token-manager.key"
        if key_file.exists():
            found |= {line.strip() for line in key_file.read_text().splitlines() if line.strip()}
        with contextlib.closing(sqlite3.connect(self.workdir / "emulator.db")) as db:
            row = db.execute("SELECT value FROM kv WHERE key = 'state'").fetchone()
        state = json.loads(row[0]) if row else {}
        oauth = state.get("oauth", {})
        for grant in oauth.get("grants", []):
            found.add(str(grant["refresh_token"]))
            found |= set(grant.get("superseded", {}))
        found |= set(oauth.get("access", {}))
        return found

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SERVICE_TOKEN}"}

    async def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, f"{self.emulator_url}/_admin{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


def _base_env(bootstrap: str, prefix: str, workdir: Path, profile: Profile) -> dict[str, str]:
    import os

    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "QBSYNC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "QBSYNC_TOPICS__PREFIX": prefix,
        "QBSYNC_TOPICS__PARTITIONS": "3",
        "QBSYNC_TOPICS__RETRY_PARTITIONS": "3",
        "QBSYNC_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "QBSYNC_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
        "QBSYNC_DATABASE__DATA_DIR": str(workdir / "data"),
        # The profile's ladder: long enough to outlast any one fault episode or restart, short enough for a test.
        "QBSYNC_RUNTIME__RETRY_DELAYS_SECONDS": json.dumps(list(profile.retry_delays_s)),
        "QBSYNC_RUNTIME__COMMIT_INTERVAL_MS": "50",
        "QBSYNC_RUNTIME__HANDLER_TIMEOUT_SECONDS": "30",
        "QBSYNC_RUNTIME__SHUTDOWN_GRACE_SECONDS": "5",
        "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": SERVICE_TOKEN,
        "QBSYNC_LOGGING__LEVEL": profile.log_level,
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env


def _has_terminal(documents: Iterable[dict[str, Any]]) -> bool:
    return any(is_terminal(d) for d in documents)


def is_terminal(document: dict[str, Any]) -> bool:
    """SyncCompleted, SyncFailed, or a status change that ends the event (ignored, or held pending)."""
    if document["event_type"] in ("SyncCompleted", "SyncFailed"):
        return True
    return document["event_type"] == "SyncStatusChanged" and document["payload"].get("status") in TERMINAL_STATUSES


def final_outcomes(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outcomes that end an event: completed, failed or ignored; ``pending`` only when nothing of those follows
    (a void held for its invoice answers ``pending`` and then ``completed`` once the invoice exists — one outcome)."""
    final = [d for d in documents if is_terminal(d) and d["payload"].get("status") != "pending"]
    return final or [d for d in documents if is_terminal(d)][-1:]


def payment_status(results: ResultLog, invoice_id: UUID) -> str | None:
    """The payment status Batchly was told last for an invoice (``InvoicePaymentChanged``), if any."""
    changes = sorted(results.payment_changes.get(invoice_id, {}).values(), key=lambda d: str(d["occurred_at"]))
    return str(changes[-1]["payload"]["status"]) if changes else None
