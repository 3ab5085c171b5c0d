"""``qbsync up``: the whole platform on this machine, on its embedded defaults, 127.0.0.1 only.

Starts, in order: the embedded Kafka-protocol broker (tansu) unless an external Kafka is configured, every topic with
explicit partition counts, the QBO emulator (seeded with a demo company), then token-manager, customer-sync,
invoice-sync and pull-sync as separate processes. Waits until every ``/health`` answers. Ctrl-C (or SIGTERM) stops
them in reverse order by their own pids — SIGTERM, then SIGKILL after a timeout — and the broker last. Children run in
their own process groups with a parent-death signal, so even a killed launcher leaves no orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from qbsync.embedded.broker import EmbeddedBroker
from qbsync.embedded.processes import child_preexec
from qbsync.runtime.kafka import ensure_topics
from qbsync.service import platform_topics
from qbsync.settings import DEFAULT_HTTP_PORTS, Settings

__all__ = ["Stack", "StackError"]

SERVICES: tuple[tuple[str, str], ...] = (
    ("token-manager", "token_manager"),
    ("customer-sync", "customer_sync"),
    ("invoice-sync", "invoice_sync"),
    ("pull-sync", "pull_sync"),
)


class StackError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    command: list[str]
    health_url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    restarts: list[float] = field(default_factory=list)


class Stack:
    def __init__(
        self,
        settings: Settings,
        *,
        with_emulator: bool = True,
        echo: Callable[[str], None] = print,
        quiet_children: bool = False,
    ) -> None:
        self.settings = settings
        self.with_emulator = with_emulator
        self.echo = echo
        self.quiet_children = quiet_children
        self.log_dir = settings.embedded.log_dir
        self.external_kafka = "bootstrap_servers" in settings.kafka.model_fields_set
        self.broker: EmbeddedBroker | None = None
        self.children: list[Child] = []
        self._stopping = False

    # ---- start ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = self.settings.kafka.bootstrap_servers
        if not self.external_kafka:
            embedded = self.settings.embedded
            self.broker = EmbeddedBroker(
                host=embedded.broker_host,
                port=embedded.broker_port + embedded.port_offset,
                log_path=self.log_dir / "broker.log",
            )
            bootstrap = self.broker.start()
            pid = self.broker.process.pid if self.broker.process else "?"
            self.echo(f"broker      tansu (embedded) on {bootstrap}  pid {pid}")
        else:
            self.echo(f"broker      external Kafka at {bootstrap}")
        created = asyncio.run(
            ensure_topics(
                self.settings.kafka.model_copy(update={"bootstrap_servers": bootstrap}),
                self.settings.topics,
                platform_topics(self.settings),
                client_id="stack",
            )
        )
        self.echo(f"topics      {len(platform_topics(self.settings))} topics ready ({len(created)} created)")
        env = {
            **os.environ,
            "QBSYNC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "PYTHONUNBUFFERED": "1",
        }
        token_manager = self.settings.token_manager
        if "url" not in token_manager.model_fields_set:
            # With a port offset token-manager is not where the defaults say: tell the others where it is.
            port = DEFAULT_HTTP_PORTS["token-manager"] + self.settings.embedded.port_offset
            url = f"http://{self.settings.http.host}:{port}"
            env["QBSYNC_TOKEN_MANAGER__URL"] = url
            if "redirect_uri" not in token_manager.model_fields_set:
                env["QBSYNC_TOKEN_MANAGER__REDIRECT_URI"] = f"{url}/oauth/callback"
        if self.with_emulator:
            port = self.settings.embedded.emulator_port + self.settings.embedded.port_offset
            emulator_env = dict(env)
            self.children.append(
                Child(
                    "qbo-emulator",
                    [
                        sys.executable,
                        "-m",
                        "qbo_emulator",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--seed-demo",
                        "1",
                        "--log-level",
                        "warning",
                    ],
                    f"http://127.0.0.1:{port}/health",
                    emulator_env,
                    self.log_dir / "qbo-emulator.log",
                )
            )
            env["QBSYNC_QBO__BASE_URL"] = f"http://127.0.0.1:{port}"
        for name, module in SERVICES:
            port = DEFAULT_HTTP_PORTS[name] + self.settings.embedded.port_offset
            child_env = {**env, "QBSYNC_HTTP__PORT": str(port)}
            self.children.append(
                Child(
                    name,
                    [sys.executable, "-m", module],
                    f"http://{self.settings.http.host}:{port}/health",
                    child_env,
                    self.log_dir / f"{name}.log",
                )
            )
        for child in self.children:
            self._spawn(child)
        self._wait_healthy()

    def _spawn(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        child.process = subprocess.Popen(  # noqa: S603 - our own modules, run by the current interpreter
            child.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child.env,
            preexec_fn=child_preexec,
        )
        assert child.process.stdout is not None
        child.pump = threading.Thread(
            target=_pump,
            args=(child.name, child.process.stdout, child.log_path, self.echo, self.quiet_children),
            daemon=True,
        )
        child.pump.start()
        self.echo(f"{child.name:<11} started, pid {child.process.pid}, log {child.log_path}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.settings.embedded.start_timeout_seconds
        pending = {c.name: c for c in self.children}
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name, child in list(pending.items()):
                    assert child.process is not None
                    if child.process.poll() is not None:
                        raise StackError(
                            f"{name} exited with code {child.process.returncode} during start-up; see {child.log_path}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(child.health_url).status_code == 200:
                            self.echo(f"{name:<11} healthy   {child.health_url}")
                            del pending[name]
                if pending:
                    time.sleep(0.2)
        if pending:
            raise StackError(
                f"not healthy within {self.settings.embedded.start_timeout_seconds}s: {', '.join(pending)}"
            )

    # ---- run / stop ----------------------------------------------------------------------------------------------
    def run_until_signalled(self) -> int:
        """Block until SIGINT/SIGTERM; restart a child that dies (at most 3 times a minute)."""
        received: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            received.append(signum)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.echo("qbsync is up. Press Ctrl-C to stop.")
            while not received:
                for child in self.children:
                    assert child.process is not None
                    code = child.process.poll()
                    if code is not None and not received:
                        now = time.monotonic()
                        child.restarts = [t for t in child.restarts if now - t < 60]
                        if len(child.restarts) >= 3:
                            self.echo(
                                f"{child.name} keeps exiting (code {code}); stopping the stack. See {child.log_path}"
                            )
                            return 1
                        child.restarts.append(now)
                        self.echo(f"{child.name} exited with code {code}; restarting")
                        self._spawn(child)
                time.sleep(0.2)
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        timeout = self.settings.embedded.stop_timeout_seconds
        for child in reversed(self.children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            process = child.process
            if process is None:
                continue
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
                code = process.returncode
                # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean stop too
                how = "cleanly" if code in (0, -signal.SIGTERM) else f"with exit code {code}"
                self.echo(f"{child.name:<11} stopped {how}")
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                self.echo(f"{child.name:<11} killed after {timeout}s")
            if child.pump is not None:
                child.pump.join(2)
        if self.broker is not None:
            pid = self.broker.process.pid if self.broker.process else None
            self.broker.stop()
            self.echo(f"broker      stopped (pid {pid})")


def _pump(name: str, stream: IO[bytes], log_path: Path, echo: Callable[[str], None], quiet: bool) -> None:
    with log_path.open("ab") as log:
        for line in iter(stream.readline, b""):
            log.write(line)
            log.flush()
            if not quiet:
                echo(f"{name:<11} | {line.decode('utf-8', 'replace').rstrip()}")
