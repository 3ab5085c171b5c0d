"""``python -m tests.reliability [reduced|full]``: one campaign run with its report (``make reliability``: full).

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts the embedded broker for the run. Exits 1 when the accounting
pass finds a violation, 0 otherwise; the report is printed either way and written to ``<workdir>/report.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from qbsync.embedded.broker import EmbeddedBroker
from tests.reliability.accounting import account
from tests.reliability.campaign import run_campaign
from tests.reliability.scenario import PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    parser.add_argument("profile", nargs="?", default="full", choices=sorted(PROFILES))
    parser.add_argument("--workdir", type=Path, default=None, help="logs and data (default: a new temporary dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per admin call: noise
    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix="qbsync-reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None if configured else EmbeddedBroker(log_path=workdir / "broker.log")
    try:
        bootstrap = configured or (broker.start() if broker is not None else "")
        run = asyncio.run(run_campaign(PROFILES[args.profile], bootstrap, workdir))
    finally:
        if broker is not None:
            broker.stop()
    accounting = account(run)
    report = accounting.report()
    (workdir / "report.txt").write_text(report + "\n")
    print(report)
    print(f"logs and data: {workdir}")
    return 0 if accounting.ok else 1


if __name__ == "__main__":
    sys.exit(main())
