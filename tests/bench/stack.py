"""The platform under measurement: the QBO emulator, token-manager and the sync services as separate processes.

Each scenario gets a stack of its own (a unique topic prefix on the run's broker, a fresh emulator, fresh databases),
so one scenario's leftovers never flatter or burden the next. Every child is started in its own process group with
``PR_SET_PDEATHSIG`` (as ``qbsync up`` does) and stopped by its pid; :meth:`BenchStack.close` runs on every exit path.

The stack also measures its processes: CPU seconds (``psutil``) and the kernel's peak resident set (``VmHWM``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psutil  # type: ignore[import-untyped]

from qbsync.embedded.broker import free_port
from qbsync.embedded.processes import child_preexec

__all__ = ["SERVICE_MODULES", "BenchStack", "Proc", "ProcessStats"]

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = {
    "token-manager": "token_manager",
    "customer-sync": "customer_sync",
    "invoice-sync": "invoice_sync",
    "pull-sync": "pull_sync",
}
SERVICE_TOKEN = "bench-service-token"  # token-manager's service credential inside this throwaway stack
_HEALTH_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """CPU seconds used and peak resident memory of one process (at the moment it was read)."""

    cpu_seconds: float
    peak_rss_bytes: int
    rss_bytes: int


@dataclass
class Proc:
    """One child process of the stack."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> ProcessStats:
        process = psutil.Process(self.popen.pid)
        with process.oneshot():
            times = process.cpu_times()
            rss = int(process.memory_info().rss)
        return ProcessStats(times.user + times.system, _peak_rss(self.popen.pid) or rss, rss)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _peak_rss(pid: int) -> int | None:
    """The kernel's high-water mark of the process's resident set (``VmHWM``), in bytes."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


@dataclass
class BenchStack:
    """Processes of one scenario. ``bootstrap``: the run's broker; ``workdir``: logs and SQLite files."""

    bootstrap: str
    workdir: Path
    #: Extra environment for every service (e.g. a PostgreSQL URL, runtime settings of the scenario).
    service_env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:10]}.")
    emulator: Proc | None = None
    processes: dict[str, Proc] = field(default_factory=dict)
    broker_pid: int | None = None
    #: Partitions one instance of invoice-sync holds when it is alone in its group (read before scaling out).
    partitions_total: int = 0
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60), repr=False)

    # ---- processes -----------------------------------------------------------------------------------------------
    def start_emulator(self, *args: str) -> Proc:
        port = free_port()
        command = [sys.executable, "-m", "qbo_emulator", "--port", str(port), "--log-level", "warning", *args]
        self.emulator = self._spawn("qbo-emulator", command, port, dict(os.environ))
        return self.emulator

    def start_service(self, service: str, *, instance: int = 1, **env: str) -> Proc:
        """Start one instance of ``service`` (instances of a service share its consumer group and database)."""
        name = service if instance == 1 else f"{service}#{instance}"
        port = free_port()
        environment = self.env(QBSYNC_HTTP__PORT=str(port), **env)
        if service == "token-manager":
            environment["QBSYNC_TOKEN_MANAGER__URL"] = f"http://127.0.0.1:{port}"
            environment["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"http://127.0.0.1:{port}/oauth/callback"
        command = [sys.executable, "-m", SERVICE_MODULES[service]]
        self.processes[name] = self._spawn(name, command, port, environment)
        return self.processes[name]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a service: the stack's broker, prefix, databases, emulator and token-manager."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("QBSYNC_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
        base |= {
            "PYTHONUNBUFFERED": "1",
            "QBSYNC_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "QBSYNC_TOPICS__PREFIX": self.prefix,
            "QBSYNC_DATABASE__DATA_DIR": str(self.workdir / "data"),
            "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": SERVICE_TOKEN,
            "QBSYNC_LOGGING__LEVEL": "WARNING",
        }
        if self.emulator is not None:
            base["QBSYNC_QBO__BASE_URL"] = self.emulator.url
        token_manager = self.processes.get("token-manager")
        if token_manager is not None:
            base["QBSYNC_TOKEN_MANAGER__URL"] = token_manager.url
            base["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"{token_manager.url}/oauth/callback"
        return base | dict(self.service_env) | extra

    def stop(self, name: str) -> int | None:
        """SIGTERM (graceful: in-flight records finish and are committed), SIGKILL after a bound."""
        process = self.processes.pop(name)
        return _terminate(process.popen)

    def close(self) -> None:
        """Stop every process of the stack (services first, then the emulator)."""
        for name in list(self.processes):
            with contextlib.suppress(Exception):
                self.stop(name)
        if self.emulator is not None:
            _terminate(self.emulator.popen)
        self._http.close()

    def all_processes(self) -> Iterator[Proc]:
        yield from self.processes.values()
        if self.emulator is not None:
            yield self.emulator

    def stats(self) -> dict[str, ProcessStats]:
        """CPU and memory of every running process of the stack, and of the broker when the run owns it."""
        found = {p.name: p.stats() for p in self.all_processes() if p.popen.poll() is None}
        if self.broker_pid is not None:
            with contextlib.suppress(psutil.Error):
                broker = psutil.Process(self.broker_pid)
                times = broker.cpu_times()
                rss = int(broker.memory_info().rss)
                found["broker"] = ProcessStats(times.user + times.system, _peak_rss(self.broker_pid) or rss, rss)
        return found

    def _spawn(self, name: str, command: list[str], port: int, env: dict[str, str]) -> Proc:
        log = self.workdir / "logs" / f"{name.replace('#', '-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            popen = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=child_preexec,
            )
        process = Proc(name, popen, port, log)
        try:
            _wait_healthy(process)
        except BaseException:
            _terminate(popen)
            raise
        return process

    # ---- the emulator as Intuit ----------------------------------------------------------------------------------
    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.emulator is not None, "the emulator is not running"
        response = self._http.request(method, f"{self.emulator.url}/_admin{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def company_stats(self, realm_id: str) -> dict[str, Any]:
        return dict(self.admin("GET", f"/companies/{realm_id}/stats"))

    def connect(self, organization_id: UUID, realm_id: str) -> None:
        """token-manager's real connect flow, as a browser follows it: consent at 'Intuit', land on the callback."""
        token_manager = self.processes["token-manager"]
        self.admin("POST", "/oauth/consent", json={"realm_id": realm_id})
        response = httpx.get(  # a fresh client per flow: no cookies carried between flows
            f"{token_manager.url}/connect/{organization_id}",
            follow_redirects=True,
            timeout=60,
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"connecting {organization_id} failed: HTTP {response.status_code} {response.text[:300]}"
            )


def _wait_healthy(process: Proc) -> None:
    deadline = time.monotonic() + _HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{process.url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} not healthy within {_HEALTH_TIMEOUT_S:g}s:\n{process.tail()}")


def _terminate(popen: subprocess.Popen[bytes]) -> int | None:
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
    try:
        return popen.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        popen.kill()
        return popen.wait(10)
