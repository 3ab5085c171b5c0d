"""Deployment files stay valid: docker-compose.yml against the Compose Specification, Dockerfiles against the tree."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("customer-sync", "invoice-sync", "pull-sync", "token-manager")


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_kafka_in_kraft_mode_postgres_and_every_service_from_its_dockerfile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka
    assert "ZOOKEEPER" not in str(kafka).upper()
    assert services["postgres"]["image"].startswith("postgres:")
    for name in SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == f"services/{name}/Dockerfile"
        assert (ROOT / service["build"]["dockerfile"]).exists()
        env = service["environment"]
        assert env["QBSYNC_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["QBSYNC_DATABASE__URL"].startswith("postgresql+asyncpg://")
        assert set(service["depends_on"]) == {"kafka", "postgres"}
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), "published ports stay on the host's loopback"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_copies_existing_paths_and_runs_the_declared_entry_point(service: str) -> None:
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+) ", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).exists(), f"{service}: COPY {source} does not exist"
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    assert service in project["project"]["scripts"]
    assert f'CMD ["{service}"]' in dockerfile
    assert f"--package {project['project']['name']}" in dockerfile
    assert "USER qbsync" in dockerfile, "containers do not run as root"
