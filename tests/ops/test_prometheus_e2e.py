"""A real Prometheus (Debian's binary) scrapes a running platform; every dashboard query and every alert rule
evaluates without error and finds data.

The platform is the e2e one (emulator, token-manager's connect flow, customer-sync as separate processes). Traffic
includes a 429 from QuickBooks (a retry) and an invalid customer (a dead letter), so the failure panels have data.
Prometheus binds 127.0.0.1, scrapes every second, and is stopped by the test.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from qbsync_cli.ops.dashboard import DASHBOARD_PATH, panel_queries
from tests.e2e.platform import Platform, platform
from tests.fixtures.emulator import free_port
from tests.ops.stack import invalid_copy, publish, results, world

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "qbsync-alerts.yml"
#: Grafana's variables, as an operator's "last 10 minutes, every service" view resolves them.
GRAFANA_VARIABLES = {"$service": ".*", "$__range": "10m", "$__rate_interval": "1m"}


@pytest.fixture
def scraped_platform(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    w = world(seed=91)
    org = w.add_organization()
    customers = [w.create_customer(org.entity_id) for _ in range(5)]
    broken = invalid_copy(w.create_customer(org.entity_id))
    with platform(kafka_bootstrap, tmp_path) as plat:
        plat.start_emulator()
        realm = plat.create_company(name="Scraped Co")
        plat.start("token-manager")
        plat.connect(org.entity_id, realm)
        plat.start("customer-sync")
        # one 429 from QuickBooks: the customer goes through the retry ladder
        plat.admin("POST", "/faults", json={"kind": "throttle", "operation": "create", "next_n": 1})
        asyncio.run(publish(kafka_bootstrap, plat.prefix, [org, *customers, broken]))
        outcomes = asyncio.run(results(kafka_bootstrap, plat.prefix, [e.event_id for e in [*customers, broken]]))
        assert outcomes[broken.event_id][0]["event_type"] == "SyncFailed"
        with _prometheus(plat, tmp_path) as url:
            yield plat, url


def test_every_dashboard_panel_and_alert_rule_evaluates_with_data(scraped_platform: tuple[Platform, str]) -> None:
    plat, url = scraped_platform
    with httpx.Client(base_url=url, timeout=10) as api:
        _wait_for(api, 'count(up{job="qbsync"} == 1) == 2', "both services scraped")
        _wait_for(api, "qbsync_last_sync_timestamp_seconds", "the ledger gauges (refreshed every 15 s)")
        _wait_for(api, "qbsync_qbo_throttled_responses_total", "the 429 counter")

        dashboard = json.loads((ROOT / DASHBOARD_PATH).read_text())
        empty = []
        for title, expr in panel_queries(dashboard):
            data = _query(api, _resolve(expr))
            if not data["result"]:
                empty.append(f"{title}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)

        rules = yaml.safe_load(RULES.read_text())
        alerts = [rule for group in rules["groups"] for rule in group["rules"]]
        for rule in alerts:
            _query(api, rule["expr"])  # evaluates without error (an alert that does not fire returns nothing)
            for name in set(re.findall(r"\b(qbsync_[a-z0-9_]+|up)\b", rule["expr"])):
                assert _query(api, f'count({{__name__="{name}"}})')["result"], f"{rule['alert']}: no {name} series"

        loaded = _rule_health(api)
        assert set(loaded) == {rule["alert"] for rule in alerts}
        assert all(health == "ok" for health in loaded.values()), loaded
        # the dead letter and the retry are visible to Prometheus, with the service label on every series
        dead = _query(api, 'sum by (service) (qbsync_dead_letters_total{error_class="permanent"})')["result"]
        by_service = {r["metric"]["service"]: float(r["value"][1]) for r in dead}
        assert by_service == {"customer-sync": 1.0, "token-manager": 0.0}, "primed at zero where nothing failed"
        retries = _query(api, 'sum(qbsync_retries_total{service="customer-sync", tier="1"})')["result"]
        assert float(retries[0]["value"][1]) >= 1
        qbo = _query(api, 'sum by (service) (qbsync_qbo_requests_total{status="429"})')["result"]
        assert [r["metric"]["service"] for r in qbo] == ["customer-sync"], "honor_labels + target label"
        assert plat.processes["customer-sync"].popen.poll() is None


def _resolve(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _query(api: httpx.Client, expr: str) -> dict[str, Any]:
    response = api.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200, f"{expr}: {body}"
    assert body["status"] == "success", f"{expr}: {body}"
    data: dict[str, Any] = body["data"]
    return data


def _wait_for(api: httpx.Client, expr: str, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _query(api, expr)["result"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus has no data for {what} ({expr}) after {timeout}s")


def _rule_health(api: httpx.Client, timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        groups = api.get("/api/v1/rules").json()["data"]["groups"]
        health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
        if health and all(h != "unknown" for h in health.values()):
            return health
        time.sleep(0.5)
    return health


class _prometheus:
    """Prometheus on a free loopback port scraping the platform's services every second; stopped on exit."""

    def __init__(self, plat: Platform, workdir: Path) -> None:
        self.plat = plat
        self.workdir = workdir / "prometheus"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        binary = shutil.which("prometheus")
        assert binary is not None, (
            "prometheus is missing: install Debian's prometheus package (scripts/bootstrap --test)"
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        targets = [
            {"targets": [f"127.0.0.1:{p.port}"], "labels": {"service": name}} for name, p in self.plat.processes.items()
        ]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "qbsync", "honor_labels": True, "static_configs": targets}],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.workdir / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("Prometheus did not become ready")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
