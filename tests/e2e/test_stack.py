"""The README's run command: `qbsync up` brings the stack up, every /health answers, Ctrl-C leaves no process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from qbsync.settings import DEFAULT_HTTP_PORTS

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

ROOT = Path(__file__).resolve().parents[2]


def _launch(tmp_path: Path, offset: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QBSYNC_EMBEDDED__PORT_OFFSET": str(offset),
        "QBSYNC_EMBEDDED__LOG_DIR": str(tmp_path / "log"),
        "QBSYNC_DATABASE__DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the README's command runs the embedded broker
    return subprocess.Popen(
        [sys.executable, "-m", "qbsync_cli.main", "up", "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "up.out").open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(urls: list[str], launcher: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = set(urls)
    while pending and time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise AssertionError(f"qbsync up exited early with {launcher.returncode}")
        for url in list(pending):
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    pending.discard(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    assert not pending, f"not healthy: {pending}"


@pytest.mark.parametrize("how", ["ctrl-c", "launcher-killed"])
def test_qbsync_up_serves_health_and_leaves_no_process_behind(tmp_path: Path, how: str) -> None:
    offset = random.randrange(1_000, 20_000, 10)
    launcher = _launch(tmp_path, offset)
    family: list[psutil.Process] = []
    try:
        names = ["qbo-emulator", "token-manager", "customer-sync", "invoice-sync", "pull-sync"]
        urls = [f"http://127.0.0.1:{DEFAULT_HTTP_PORTS[n] + offset}/health" for n in names]
        _wait_healthy(urls, launcher)
        for url in urls[1:]:
            body = httpx.get(url, timeout=2).json()
            assert body["status"] == "ok"
            assert body["checks"]["consumer"]["ok"] is True
            metrics = httpx.get(url.replace("/health", "/metrics"), timeout=2).text
            assert "qbsync_partitions_assigned" in metrics
        family = psutil.Process(launcher.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in family]
        assert any("tansu" in c for c in commands), "the embedded broker is a child of the launcher"
        assert sum("-m " in c for c in commands) >= 5, commands
        # nothing listens on a non-loopback address
        for proc in family:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    assert conn.laddr.ip in ("127.0.0.1", "::1"), (proc.cmdline(), conn.laddr)

        if how == "ctrl-c":
            launcher.send_signal(signal.SIGINT)
            assert launcher.wait(60) == 0
        else:
            launcher.kill()  # SIGKILL: no chance to clean up; the children's parent-death signal must do it
            launcher.wait(10)
        _, alive = psutil.wait_procs(family, timeout=40)
        assert not alive, f"left behind: {[p.pid for p in alive]}"
    finally:
        # Only the launcher's own family: the session's shared test broker is a child of pytest too.
        if launcher.poll() is None:
            launcher.kill()
        for proc in family:
            if proc.is_running():
                proc.kill()
