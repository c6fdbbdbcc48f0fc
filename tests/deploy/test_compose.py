"""deploy/docker holds together: the compose file, its workspace, its dagster.yaml and the image
name the same ports, paths, network, volume and settings. `docker compose` cannot run here;
what it would trip on first (a run container without a setting, a workspace pointing at no
server) is checked from the files."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.dockerfile import declared_command, declared_env, declared_ports, option

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())  # resolves `<<` merges


@pytest.fixture(scope="module")
def launcher() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source of a service's volumes (short syntax)."""
    return {entry.split(":")[1]: entry.split(":")[0] for entry in service.get("volumes", [])}


def test_the_workspace_points_at_the_code_server_the_image_starts(compose: dict[str, Any]) -> None:
    (entry,) = yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"]
    server = entry["grpc_server"]
    cmd = declared_command(ROOT / "Dockerfile")
    service = compose["services"][server["host"]]
    assert "command" not in service, "the code location runs the image's CMD"
    assert (
        server["port"] == int(option(cmd, "--port", "-p")) == declared_ports(ROOT / "Dockerfile")[0]
    )
    assert server["location_name"] == option(cmd, "--location-name")
    # the runs start from the image the code location reports
    assert service["environment"]["DAGSTER_CURRENT_IMAGE"] == service["image"]


def test_every_dagster_process_reads_the_instance_and_the_workspace(
    compose: dict[str, Any],
) -> None:
    home = declared_env(ROOT / "Dockerfile")["DAGSTER_HOME"]
    for name in ("init", "code", "webserver", "daemon"):
        mounts = _mounts(compose["services"][name])
        assert mounts.get(f"{home}/dagster.yaml") == "./dagster.yaml", name
    for name in ("webserver", "daemon"):
        service = compose["services"][name]
        workspace = option(service["command"], "-w", "--workspace")
        assert _mounts(service)[workspace] == "./workspace.yaml", name
        assert _mounts(service)["/var/run/docker.sock"] == "/var/run/docker.sock", name


def test_run_containers_join_the_network_and_volume_compose_creates(
    compose: dict[str, Any], launcher: dict[str, Any]
) -> None:
    network = next(k for k, v in compose["networks"].items() if v["name"] == launcher["network"])
    assert network in compose["services"]["postgres"]["networks"]
    for volume, mount in launcher["container_kwargs"]["volumes"].items():
        key = next(k for k, v in compose["volumes"].items() if (v or {}).get("name") == volume)
        assert _mounts(compose["services"]["daemon"])[mount["bind"]] == key
    state_dir = declared_env(ROOT / "Dockerfile")["CONNECTOR_STATE_DIR"]
    assert state_dir in {
        mount["bind"] for mount in launcher["container_kwargs"]["volumes"].values()
    }


def test_the_daemon_has_every_setting_it_hands_to_a_run(
    compose: dict[str, Any], launcher: dict[str, Any]
) -> None:
    """DockerRunLauncher copies each named variable from the daemon's environment; one that is
    not there fails the launch."""
    daemon = compose["services"]["daemon"]
    assert daemon["env_file"] == "connector.env"
    provided = set(daemon["environment"]) | set(_env_file(DOCKER / "connector.env.example"))
    assert set(launcher["env_vars"]) <= provided, set(launcher["env_vars"]) - provided


def test_migrations_and_pools_run_once_before_any_dagster_process(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init = services["init"]
    steps = [shlex.split(step) for step in init["command"][-1].split("&&")]
    assert ["connector", "db", "upgrade"] in steps
    assert ["connector", "deploy", "init"] in steps
    assert init["restart"] == "no"
    assert services["code"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
    assert "healthcheck" in services["code"]
