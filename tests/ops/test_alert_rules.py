"""The alert rules, the Prometheus config and the Alertmanager routing, checked with the real tools.

``promtool`` and ``amtool`` come from Debian's ``prometheus`` and ``prometheus-alertmanager`` packages
(``scripts/bootstrap --test`` installs them). These tests fail — never skip — when the tools are missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "qbsync-alerts.yml"
RULE_TESTS = PROMETHEUS / "tests" / "qbsync-alerts.test.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing: install Debian's prometheus packages (scripts/bootstrap --test)"
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_prometheus_config_and_rules_pass_promtool_checks() -> None:
    config = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in config.stdout + config.stderr


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = run(tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_tested_both_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts never shown to fire"
    assert names - quiet == set(), "alerts never shown to stay quiet"


def test_the_unit_tests_catch_a_weakened_threshold(tmp_path: Path) -> None:
    """Mutation check: with the success-rate target lowered to 50% the firing case must fail."""
    rules = RULES.read_text()
    assert ") < 0.99" in rules
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(rules.replace(") < 0.99", ") < 0.5"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = run(tool("promtool"), "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert result.returncode != 0
    assert "QbsyncSyncSuccessRateLow" in result.stdout + result.stderr


def test_alerts_cover_the_seeds_success_metrics_and_name_a_runbook_section() -> None:
    by_name = {rule["alert"]: rule for rule in alerts()}
    assert {
        "QbsyncSyncSuccessRateLow",
        "QbsyncInvoiceSyncLatencyHigh",
        "QbsyncDeadLettersGrowing",
        "QbsyncConnectionLost",
        "QbsyncTokenRefreshFailing",
    } <= set(by_name)
    assert "0.99" in by_name["QbsyncSyncSuccessRateLow"]["expr"]
    assert "> 300" in by_name["QbsyncInvoiceSyncLatencyHigh"]["expr"]
    anchors = {_anchor(line) for line in TROUBLESHOOTING.read_text().splitlines() if line.startswith("#")}
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        runbook = rule["annotations"]["runbook"]
        assert runbook.startswith("docs/troubleshooting.md#"), name
        assert runbook.split("#", 1)[1] in anchors, f"{name}: no section {runbook}"


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "email-admin-critical"), ("warning", "email-admin")])
def test_alertmanager_routes_every_severity_to_the_admin_by_email(severity: str, receiver: str) -> None:
    amtool = tool("amtool")
    check = run(amtool, "check-config", str(ALERTMANAGER))
    assert check.returncode == 0, check.stdout + check.stderr
    routed = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", f"severity={severity}")
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.strip() == receiver
    config = yaml.safe_load(ALERTMANAGER.read_text())
    (target,) = [r for r in config["receivers"] if r["name"] == receiver]
    assert target["email_configs"][0]["to"]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")
