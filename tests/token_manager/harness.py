"""token-manager under test: the QBO emulator behind a token-endpoint recorder, token-manager in-process (the real
composition, served over real HTTP on 127.0.0.1) or as separate processes, and the steps of a connect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from qbo_emulator import EmulatorConfig, EmulatorCore, create_app
from qbo_emulator.logs import install_log_filters
from qbsync.contracts.codec import decode_envelope
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.observability.http import HttpServer, build_app
from qbsync.persistence import RUNTIME_BRANCH, Database, upgrade
from qbsync.qbo import QboClientSettings
from qbsync.runtime import HandlerRegistry, Publisher
from qbsync.service import ServiceContext
from qbsync.settings import DatabaseSettings, KafkaSettings, Settings, TokenManagerSettings, TopicSettings
from qbsync.topics import QBSYNC_CONNECTIONS
from tests.fixtures.emulator import free_port, serve_asgi
from tests.integration.harness import Kafka
from tests.token_manager.recorder import TokenEndpointRecorder
from token_manager.app import BRANCH, MIGRATIONS, TokenManager, make_definition
from token_manager.clock import Clock, system_clock
from token_manager.store import qbo_connections

T = TypeVar("T")

SERVICE_TOKEN = "test-service-token-" + uuid.uuid4().hex
ENCRYPTION_KEY = Fernet.generate_key().decode()


# ---- the emulator ---------------------------------------------------------------------------------------------------
@dataclass
class OAuthEmulator:
    """The emulator served on 127.0.0.1 with a recorder in front of its token endpoint."""

    base_url: str
    core: EmulatorCore
    recorder: TokenEndpointRecorder
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (safe access to the emulator's state while it serves)."""
        return asyncio.run_coroutine_threadsafe(_wrap(fn), self.loop).result(timeout=30)

    def create_company(self, name: str = "Sandbox Company_US_1") -> str:
        return self.call(lambda: self.core.create_company(name=name).realm_id)

    def current_refresh_token(self, realm_id: str) -> str:
        """The refresh token the emulator currently honours for the realm's live grant."""

        def find() -> str:
            live = [g for g in self.core.oauth.grants.values() if g.realm_id == realm_id and not g.revoked]
            assert len(live) == 1, f"expected one live grant for {realm_id}, found {len(live)}"
            return live[0].refresh_token

        return self.call(find)

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as client:
            response = await client.request(method, f"/_admin{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def advance_clock(self, seconds: float) -> None:
        await self.admin("POST", "/clock", {"advance_s": seconds})

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid_configuration"


async def _wrap(fn: Callable[[], T]) -> T:
    return fn()


@contextlib.contextmanager
def serve_oauth_emulator(config: EmulatorConfig) -> Iterator[OAuthEmulator]:
    install_log_filters()
    core = EmulatorCore(config)
    recorder = TokenEndpointRecorder(create_app(core=core))
    with serve_asgi(recorder) as (base_url, loop):
        try:
            yield OAuthEmulator(base_url, core, recorder, loop)
        finally:
            recorder.release.set()


# ---- token-manager in-process ---------------------------------------------------------------------------------------
def token_manager_settings(
    *,
    emulator: OAuthEmulator,
    port: int,
    kafka: KafkaSettings,
    topics: TopicSettings,
    database: DatabaseSettings,
    **overrides: Any,
) -> Settings:
    options: dict[str, Any] = {
        "url": f"http://127.0.0.1:{port}",
        "service_token": SecretStr(SERVICE_TOKEN),
        "redirect_uri": f"http://127.0.0.1:{port}/oauth/callback",
        "discovery_url": emulator.discovery_url,
        "encryption_keys": (SecretStr(ENCRYPTION_KEY),),
    }
    tm = TokenManagerSettings(**{**options, **overrides})
    return Settings(
        environment="test",
        kafka=kafka,
        topics=topics,
        database=database,
        token_manager=tm,
        qbo=QboClientSettings(base_url=emulator.base_url),
    )


@dataclass
class TokenManagerUnderTest:
    settings: Settings
    service: TokenManager
    db: Database
    url: str
    api: httpx.AsyncClient
    background: list[asyncio.Task[None]] = field(default_factory=list)

    async def token(self, organization_id: uuid.UUID) -> httpx.Response:
        return await self.api.get(f"/v1/organizations/{organization_id}/token")

    async def status(self, organization_id: uuid.UUID) -> dict[str, Any]:
        response = await self.api.get(f"/v1/organizations/{organization_id}/connection")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def raw_row(self, organization_id: uuid.UUID) -> Any:
        async with self.db.connect() as conn:
            return (
                await conn.execute(select(qbo_connections).where(qbo_connections.c.organization_id == organization_id))
            ).first()


@contextlib.asynccontextmanager
async def running_token_manager(
    *,
    emulator: OAuthEmulator,
    kafka: KafkaSettings,
    topics: TopicSettings,
    database: DatabaseSettings,
    clock: Clock = system_clock,
    run_background: bool = False,
    **overrides: Any,
) -> AsyncIterator[TokenManagerUnderTest]:
    """token-manager's own composition (``make_definition(...).build``) with its routes on a real HTTP server.

    The background loops run only with ``run_background``; tests otherwise drive a maintenance pass themselves.
    """
    port = free_port()
    settings = token_manager_settings(
        emulator=emulator, port=port, kafka=kafka, topics=topics, database=database, **overrides
    )
    async with Kafka(kafka, topics) as admin:
        await admin.create(QBSYNC_CONNECTIONS)
    db = await Database.open("token-manager", database)
    publisher = Publisher(kafka, client_id="token-manager-test", topic_prefix=topics.prefix)
    stack = contextlib.AsyncExitStack()
    try:
        stack.push_async_callback(db.close)
        await upgrade(db, (RUNTIME_BRANCH, BRANCH), version_locations=(MIGRATIONS,))
        await publisher.start()
        stack.push_async_callback(publisher.stop)
        parts = await make_definition(clock=clock).build(
            ServiceContext("token-manager", settings, db, publisher, HandlerRegistry())
        )
        for close in parts.closers:
            stack.push_async_callback(close)
        http = HttpServer(
            build_app("token-manager", dict(parts.checks), routes=parts.routes), host="127.0.0.1", port=port
        )
        await http.start()
        stack.push_async_callback(http.stop)
        api = httpx.AsyncClient(
            base_url=settings.token_manager.url,
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
            timeout=60,
            limits=httpx.Limits(max_connections=200),
        )
        stack.push_async_callback(api.aclose)
        tm = TokenManagerUnderTest(settings, parts.resources, db, settings.token_manager.url, api)
        if run_background:
            tm.background = [asyncio.create_task(job()) for job in parts.background]
        yield tm
    finally:
        for task in getattr(locals().get("tm"), "background", []):
            task.cancel()
        await stack.aclose()


# ---- the connect flow -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Consent:
    """Where the emulator's consent redirected the browser: the callback URL and its parts."""

    callback_url: str
    code: str
    state: str
    realm_id: str


async def consent(tm_url: str, organization_id: uuid.UUID, *, realm_hint: str | None = None) -> Consent:
    """Play the browser up to the callback: start the connect, let the emulator consent, stop before the callback."""
    async with httpx.AsyncClient(timeout=30) as client:
        start = await client.get(
            f"{tm_url}/connect/{organization_id}", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        )
        assert start.status_code == 302, start.text
        authorize_url = start.headers["location"]
        if realm_hint is not None:
            authorize_url += f"&realmId={realm_hint}"
        answer = await client.get(authorize_url)
        assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    query = parse_qs(urlsplit(callback).query)
    return Consent(callback, query["code"][0], query["state"][0], query["realmId"][0])


async def callback(url: str, *, json_answer: bool = False) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, headers={"Accept": "application/json"} if json_answer else {})


async def connect(tm_url: str, organization_id: uuid.UUID, *, realm_hint: str | None = None) -> str:
    """The whole connect flow; returns the realm."""
    given = await consent(tm_url, organization_id, realm_hint=realm_hint)
    done = await callback(given.callback_url)
    assert done.status_code == 200, done.text
    return given.realm_id


# ---- reading events -------------------------------------------------------------------------------------------------
async def connection_events(kafka: Kafka, *, expect: int, timeout: float = 30.0) -> list[AnyEnvelope]:
    records = await kafka.read(QBSYNC_CONNECTIONS, expect=expect, timeout=timeout)
    return [decode_envelope(r.value or b"")[1] for r in records]


def events_of(
    events: list[AnyEnvelope], event_type: str, organization_id: uuid.UUID, *, distinct: bool = False
) -> list[AnyEnvelope]:
    """Events of one type and organization. ``distinct``: one per ``event_id`` — after a crash the outbox may send
    an event again with the same id (at least once; consumers de-duplicate by it)."""
    found = [e for e in events if e.event_type == event_type and e.organization_id == organization_id]
    if not distinct:
        return found
    return list({e.event_id: e for e in found}.values())


# ---- token-manager as a process -------------------------------------------------------------------------------------
@dataclass
class TokenManagerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes]

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def process_environment(settings: Settings) -> dict[str, str]:
    """The environment that makes ``python -m token_manager`` read ``settings`` (the parts tests vary)."""
    tm = settings.token_manager
    database = settings.database
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("QBSYNC_") and key != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "QBSYNC_ENVIRONMENT": settings.environment,
            "QBSYNC_LOGGING__LEVEL": "DEBUG",
            "QBSYNC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "QBSYNC_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "QBSYNC_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            "QBSYNC_TOPICS__PREFIX": settings.topics.prefix,
            "QBSYNC_TOPICS__PARTITIONS": str(settings.topics.partitions),
            "QBSYNC_TOPICS__RETRY_PARTITIONS": str(settings.topics.retry_partitions),
            "QBSYNC_DATABASE__DATA_DIR": str(database.data_dir),
            "QBSYNC_QBO__BASE_URL": settings.qbo.resolved_base_url,
            "QBSYNC_TOKEN_MANAGER__URL": tm.url,
            "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": tm.service_token.get_secret_value(),
            "QBSYNC_TOKEN_MANAGER__REDIRECT_URI": tm.redirect_uri,
            "QBSYNC_TOKEN_MANAGER__DISCOVERY_URL": tm.discovery_url or "",
            "QBSYNC_TOKEN_MANAGER__ENCRYPTION_KEYS": json.dumps([k.get_secret_value() for k in tm.encryption_keys]),
            "QBSYNC_TOKEN_MANAGER__REFRESH_CHECK_INTERVAL_SECONDS": str(tm.refresh_check_interval_seconds),
        }
    )
    if database.url is not None:
        env["QBSYNC_DATABASE__URL"] = database.url.get_secret_value()
    if database.schema_name is not None:
        env["QBSYNC_DATABASE__SCHEMA_NAME"] = database.schema_name
    return env


def start_token_manager_process(
    settings: Settings, port: int, log_path: Path, *, timeout_s: float = 60.0
) -> TokenManagerProcess:
    env = {**process_environment(settings), "QBSYNC_HTTP__PORT": str(port)}
    log = log_path.open("ab")
    process = subprocess.Popen([sys.executable, "-m", "token_manager"], stdout=log, stderr=subprocess.STDOUT, env=env)
    handle = TokenManagerProcess(process, f"http://127.0.0.1:{port}", log_path, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"token-manager exited early ({process.returncode}):\n{handle.log_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{handle.url}/health", timeout=1).status_code == 200:
                return handle
        time.sleep(0.1)
    handle.kill()
    raise AssertionError(f"token-manager did not become healthy:\n{handle.log_text()[-4000:]}")


class MovableClock:
    """The real clock plus an offset a test moves forward (token-manager's injectable clock)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def emulator_clock(emulator: OAuthEmulator) -> Clock:
    """A clock that reads the emulator's own clock: moving the emulator moves token-manager with it."""
    return emulator.core.clock.now
