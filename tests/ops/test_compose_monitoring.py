"""docker-compose runs the monitoring stack with the provisioned files, healthchecks and loopback-only ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_prometheus_grafana_alertmanager_run_with_healthchecks_and_mount_existing_files() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana", "alertmanager", "mailpit"):
        service = services[name]
        assert service["healthcheck"]["test"], name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: published ports stay on the host's loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    mounts = " ".join(services["grafana"]["volumes"])
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards" in mounts


def test_prometheus_scrapes_every_service_at_its_compose_port_and_alerts_go_to_alertmanager() -> None:
    services = compose()["services"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "qbsync"]
    assert job["honor_labels"] is True
    targets = {c["labels"]["service"]: c["targets"][0] for c in job["static_configs"]}
    for name in ("token-manager", "customer-sync", "invoice-sync", "pull-sync"):
        port = services[name]["ports"][0].rsplit(":", 1)[1]
        assert targets[name] == f"{name}:{port}"
    (manager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert manager == "alertmanager:9093"
    provisioned = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert provisioned["datasources"][0]["url"] == "http://prometheus:9090"
    assert provisioned["datasources"][0]["uid"] == "qbsync-prometheus"
