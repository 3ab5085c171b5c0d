"""The README's demo in one-shot mode, as CI runs it from a fresh clone: `qbsync demo --once`.

It starts its own embedded stack (broker, emulator, four services) on free ports, connects two organizations through
token-manager, plays the seed's New Customer and Daily Order & Invoice workflows and the accountant's payments, and
exits 0 only if every event ended as expected; then nothing of it may be left running.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from qbsync.settings import DEFAULT_HTTP_PORTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


_BASES = (19092, *DEFAULT_HTTP_PORTS.values())


def _free_offset() -> int:
    """A port offset whose broker, emulator and service ports are all free."""
    for _ in range(50):
        offset = random.randrange(1_000, 30_000, 10)
        if all(_free(base + offset) for base in _BASES):
            return offset
    raise AssertionError("no free port offset for the demo stack")


def test_demo_once_plays_the_workflows_and_exits_cleanly(tmp_path: Path) -> None:
    offset = _free_offset()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("QBSYNC_", "KAFKA_"))}
    env |= {
        "QBSYNC_EMBEDDED__PORT_OFFSET": str(offset),
        "QBSYNC_EMBEDDED__LOG_DIR": str(tmp_path / "log"),
        "QBSYNC_DATABASE__DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "160",
        "PYTHONUNBUFFERED": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "qbsync_cli.main", "demo", "--once", "--orgs", "2", "--wait", "150"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "every event ended as expected" in output
    assert "new customer(s) created in Batchly" in output
    assert "invoice(s) created" in output
    assert "the accountant recorded" in output
    assert "updated" in output, "payment statuses came back from QuickBooks"
    for process in ("token-manager", "customer-sync", "invoice-sync", "pull-sync", "qbo-emulator"):
        assert f"{process:<11} stopped cleanly" in output or f"{process} stopped cleanly" in output, process
    # Nothing of the demo's stack is left: no process still accepts connections on its ports (broker, emulator,
    # services). Closed connections may linger in TIME_WAIT; they accept nothing.
    listening = [base + offset for base in _BASES if _accepts(base + offset)]
    assert not listening, f"still listening after the demo: {listening}"
