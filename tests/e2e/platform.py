"""The platform as separate processes for end-to-end tests: emulator, token-manager and sync services.

Each process gets its own port and data directory and a unique topic prefix on the session's broker, so a test runs
beside any other. Organizations are connected through token-manager's real OAuth connect flow against the emulator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = {
    "token-manager": "token_manager",
    "customer-sync": "customer_sync",
    "invoice-sync": "invoice_sync",
    "pull-sync": "pull_sync",
}
SERVICE_TOKEN = "e2e-service-token"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Platform:
    bootstrap: str
    prefix: str
    workdir: Path
    emulator: Process | None = None
    processes: dict[str, Process] = field(default_factory=dict)

    # ---- processes -----------------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        base = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "QBSYNC_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "QBSYNC_TOPICS__PREFIX": self.prefix,
            "QBSYNC_TOPICS__PARTITIONS": "3",
            "QBSYNC_TOPICS__RETRY_PARTITIONS": "3",
            "QBSYNC_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "QBSYNC_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            "QBSYNC_DATABASE__DATA_DIR": str(self.workdir / "data"),
            "QBSYNC_RUNTIME__RETRY_DELAYS_SECONDS": "[0.5, 1.0]",
            "QBSYNC_RUNTIME__COMMIT_INTERVAL_MS": "50",
            "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": SERVICE_TOKEN,
            "QBSYNC_LOGGING__LEVEL": "INFO",
        }
        if self.emulator is not None:
            base["QBSYNC_QBO__BASE_URL"] = self.emulator.url
        if "token-manager" in self.processes:
            tm = self.processes["token-manager"]
            base["QBSYNC_TOKEN_MANAGER__URL"] = tm.url
            base["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"{tm.url}/oauth/callback"
        base.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        return base | extra

    def start_emulator(self, *args: str) -> Process:
        port = free_port()
        log = self.workdir / "qbo-emulator.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "qbo_emulator", "--port", str(port), "--log-level", "warning", *args],
            cwd=ROOT,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.emulator = Process("qbo-emulator", popen, port, log)
        self._wait_healthy(self.emulator)
        return self.emulator

    def start(self, name: str, **env: str) -> Process:
        port = free_port()
        log = self.workdir / f"{name}.log"
        environment = self.env(QBSYNC_HTTP__PORT=str(port), **env)
        if name == "token-manager":
            environment["QBSYNC_TOKEN_MANAGER__URL"] = f"http://127.0.0.1:{port}"
            environment["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"http://127.0.0.1:{port}/oauth/callback"
        popen = subprocess.Popen(
            [sys.executable, "-m", SERVICE_MODULES[name]],
            cwd=ROOT,
            env=environment,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        process = Process(name, popen, port, log)
        self.processes[name] = process
        self._wait_healthy(process)
        return process

    def stop(self, name: str, *, kill: bool = False) -> int | None:
        process = self.processes.pop(name)
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return process.popen.wait(30)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            return process.popen.wait(10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        if self.emulator is not None and self.emulator.popen.poll() is None:
            self.emulator.popen.terminate()
            try:
                self.emulator.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.emulator.popen.kill()

    @staticmethod
    def _wait_healthy(process: Process, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
            try:
                if httpx.get(f"{process.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{process.name} not healthy within {timeout}s:\n{process.tail()}")

    # ---- the emulator as Intuit ----------------------------------------------------------------------------------
    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.emulator is not None
        response = httpx.request(method, f"{self.emulator.url}/_admin{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_company(self, **options: Any) -> str:
        return str(self.admin("POST", "/companies", json={"name": "E2E Co", **options})["realm_id"])

    def rows(self, realm_id: str, entity: str) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/companies/{realm_id}/entities/{entity}")[entity])

    # ---- token-manager's connect flow ----------------------------------------------------------------------------
    def connect(self, organization_id: uuid.UUID, realm_id: str) -> None:
        """What a person does in a browser: start the connect flow, consent at 'Intuit', land on the callback."""
        tm = self.processes["token-manager"]
        self.admin("POST", "/oauth/consent", json={"realm_id": realm_id})
        # Batchly's backend starts the flow with its service credential; the browser then follows the redirects (the
        # credential is not forwarded to other origins).
        response = httpx.get(
            f"{tm.url}/connect/{organization_id}",
            follow_redirects=True,
            timeout=30,
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        )
        assert response.status_code == 200, response.text
        status = httpx.get(
            f"{tm.url}/v1/organizations/{organization_id}/connection",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
            timeout=10,
        ).json()
        assert status["status"] == "connected", status
        assert status["realm_id"] == realm_id


@contextmanager
def platform(bootstrap: str, workdir: Path, *, services: Sequence[str] = ()) -> Iterator[Platform]:
    plat = Platform(bootstrap=bootstrap, prefix=f"e{uuid.uuid4().hex[:10]}.", workdir=workdir)
    try:
        yield plat
    finally:
        plat.stop_all()
