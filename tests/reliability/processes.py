"""The platform as separate processes that the campaign can SIGKILL and restart on the same port.

``tests/e2e/platform.py`` starts each process once on a fresh port. Chaos needs more: a killed service comes back on
*its* port (the sync services know token-manager by URL; the emulator posts webhooks to pull-sync's URL) with the
same environment and data directory, and every start, kill and exit code is counted for the report. Everything here
is asynchronous so that the chaos schedule, the publisher and the result reader share one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.platform import ROOT, SERVICE_MODULES
from tests.fixtures.emulator import free_port

__all__ = ["ManagedProcess", "ProcessSet", "StartFailed"]

HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class StartFailed(AssertionError):
    """A process did not answer ``/health`` in time (or exited while starting)."""


@dataclass
class ManagedProcess:
    """One process of the platform: how to start it, and what happened to it."""

    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    #: Exit codes of the runs that ended other than by our SIGKILL or SIGTERM (crashes).
    crashes: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class ProcessSet:
    """Starts, kills, restarts and stops the platform's processes (all on 127.0.0.1)."""

    def __init__(self, workdir: Path, base_env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.base_env = dict(base_env)
        self.processes: dict[str, ManagedProcess] = {}

    # ---- definitions ---------------------------------------------------------------------------------------------
    def define_emulator(self, *args: str) -> ManagedProcess:
        port = free_port()
        argv = [sys.executable, "-m", "qbo_emulator", "--port", str(port), *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return self._define("qbo-emulator", argv, port, env)

    def define_service(self, name: str, env: Mapping[str, str], *, port: int | None = None) -> ManagedProcess:
        port = port or free_port()
        full_env = {**self.base_env, **env, "QBSYNC_HTTP__PORT": str(port)}
        return self._define(name, [sys.executable, "-m", SERVICE_MODULES[name]], port, full_env)

    def _define(self, name: str, argv: list[str], port: int, env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, port, self.workdir / f"{name}.log", env)
        self.processes[name] = process
        return process

    def __getitem__(self, name: str) -> ManagedProcess:
        return self.processes[name]

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self, name: str) -> None:
        process = self.processes[name]
        if process.running:
            raise RuntimeError(f"{name} is already running")
        with process.log.open("ab") as log:
            log.write(f"\n===== campaign: start #{process.starts + 1} of {name} =====\n".encode())
            log.flush()
            # Popen only forks and execs (no waiting): fine on the event loop, and the start time is exact.
            process.popen = subprocess.Popen(  # noqa: ASYNC220
                process.argv, cwd=ROOT, env=process.env, stdout=log, stderr=subprocess.STDOUT
            )
        process.starts += 1
        await self._wait_healthy(process)

    async def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs, in-flight records and transactions are cut where they stand."""
        process = self.processes[name]
        if not process.running:
            if process.popen is not None:  # it exited on its own since we started it: a crash
                process.crashes.append(int(process.popen.returncode))
            return
        assert process.popen is not None
        process.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.popen.wait, STOP_TIMEOUT_S)
        process.kills += 1

    async def stop(self, name: str) -> int | None:
        """SIGTERM and wait (SIGKILL after the bound). Returns the exit code."""
        process = self.processes[name]
        if process.popen is None:
            return None
        popen = process.popen
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                return await asyncio.to_thread(popen.wait, STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                popen.kill()
                return await asyncio.to_thread(popen.wait, 10)
        return popen.returncode

    async def stop_all(self) -> dict[str, int | None]:
        """Services first (they flush to the broker and the emulator), the emulator last."""
        codes: dict[str, int | None] = {}
        for name in [n for n in self.processes if n != "qbo-emulator"]:
            codes[name] = await self.stop(name)
        if "qbo-emulator" in self.processes:
            codes["qbo-emulator"] = await self.stop("qbo-emulator")
        return codes

    def kill_all_now(self) -> None:
        """Last resort in a ``finally``: nothing of the run may outlive it."""
        for process in self.processes.values():
            if process.running:
                assert process.popen is not None
                process.popen.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(10)

    def crashed(self) -> dict[str, int]:
        """Processes that exited on their own (not killed or stopped by us), with their exit code."""
        found: dict[str, int] = {}
        for process in self.processes.values():
            if process.popen is not None and process.popen.poll() is not None:
                found[process.name] = int(process.popen.returncode)
        return found

    async def _wait_healthy(self, process: ManagedProcess) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                assert process.popen is not None
                if process.popen.poll() is not None:
                    raise StartFailed(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
                try:
                    if (await http.get(f"{process.url}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise StartFailed(f"{process.name} not healthy within {HEALTH_TIMEOUT_S:.0f}s:\n{process.tail()}")


def environment(**values: Any) -> dict[str, str]:
    """String-valued environment from keyword arguments (``None`` values are left out)."""
    return {key: str(value) for key, value in values.items() if value is not None}
