"""``python -m tests.bench [--smoke] [--out PATH]``: every scenario, one after the other, in one process tree.

The run owns its broker (the embedded tansu, so its CPU and memory are the run's) and, for the platform scenario, a
throwaway PostgreSQL (two instances of a service must share a database; SQLite files cannot be shared). Everything it
starts is stopped on every exit path. The JSON report goes to ``--out``; the table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qbsync.embedded.broker import EmbeddedBroker
from tests.bench import report as reporting
from tests.bench.scenarios import FULL, SMOKE, Sizes, qbo_bound
from tests.bench.scenarios import platform as platform_scenario
from tests.bench.stack import ROOT

SCENARIOS = ("qbo_bound", "platform")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="reduced sizes (about two minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "report.json")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios")
    parser.add_argument("--workdir", type=Path, help="logs and databases (default: a temporary directory)")
    parser.add_argument("--set", action="append", default=[], metavar="SIZE=VALUE", help="override one of Sizes")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="QBSYNC_X=VALUE",
        help="extra environment of every service",
    )
    args = parser.parse_args(argv)
    sizes = _override(SMOKE if args.smoke else FULL, args.set)
    service_env = dict(item.split("=", 1) for item in args.service_env)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qbsync-bench-"))
    report = run(sizes, workdir, only=tuple(args.only or SCENARIOS), smoke=args.smoke, service_env=service_env)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(reporting.markdown(report))
    print(f"\nreport: {args.out}  (logs: {workdir / 'logs'})")
    problems = reporting.validate(report)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _override(sizes: Sizes, assignments: list[str]) -> Sizes:
    """``name=value`` pairs applied to ``sizes`` (each value parsed as the field's type)."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        current = getattr(sizes, name)  # an unknown name fails here, loudly
        changes[name] = value.lower() in ("1", "true", "yes") if isinstance(current, bool) else type(current)(value)
    return replace(sizes, **changes)


def run(
    sizes: Sizes, workdir: Path, *, only: tuple[str, ...], smoke: bool, service_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the chosen scenarios; a failing scenario is recorded (with its error) and the others still run."""
    started = time.time()
    report: dict[str, Any] = {"meta": _meta(sizes, smoke) | {"service_env": service_env or {}}, "scenarios": {}}
    broker = EmbeddedBroker(log_path=workdir / "logs" / "broker.log")
    broker.start()
    try:
        for name in only:
            try:
                report["scenarios"][name] = asyncio.run(_scenario(name, broker, workdir, sizes, service_env or {}))
            except Exception as error:  # recorded in the report, the next scenario still runs
                traceback.print_exc()
                report["scenarios"][name] = {"error": f"{type(error).__name__}: {error}"}
    finally:
        broker.stop()
    report["meta"]["wall_seconds"] = round(time.time() - started, 1)
    return reporting.with_targets(report)


async def _scenario(
    name: str, broker: EmbeddedBroker, workdir: Path, sizes: Sizes, service_env: dict[str, str]
) -> dict[str, Any]:
    assert broker.process is not None
    pid = broker.process.pid
    if name == "qbo_bound":
        return await qbo_bound(broker.bootstrap_servers, workdir, sizes, _log, broker_pid=pid, service_env=service_env)
    from tests.fixtures.database import LocalPostgres  # a throwaway server from the installed binaries

    server = LocalPostgres()
    url = server.start()
    try:
        bootstrap = broker.bootstrap_servers
        return await platform_scenario(bootstrap, workdir, url, sizes, _log, broker_pid=pid, service_env=service_env)
    finally:
        server.stop()


def _log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def _meta(sizes: Sizes, smoke: bool) -> dict[str, Any]:
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if smoke else "full",
        "sizes": asdict(sizes),
        "revision": revision.stdout.strip() or None,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    raise SystemExit(main())
