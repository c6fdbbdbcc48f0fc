"""deploy/docker/dagster.yaml and deploy/k8s/dagster.yaml pass Dagster's own validation and load
as the daemon loads them: run launcher, queued run coordinator, pools, run monitoring.

Neither Docker nor a cluster is needed: the Docker launcher connects only when it launches,
and the Kubernetes one is pointed at a kubeconfig file instead of the cluster it runs in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes.client
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._serdes import class_from_code_pointer
from dagster_docker import DockerRunLauncher
from dagster_k8s import K8sRunLauncher
from dagster_k8s.models import k8s_snake_case_dict

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = {"docker": DockerRunLauncher, "k8s": K8sRunLauncher}

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: test}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
"""


def _config(deployment: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy" / deployment / "dagster.yaml").read_text())


def _write_home(home: Path, config: dict[str, Any]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


@pytest.mark.parametrize("deployment", sorted(LAUNCHERS))
def test_the_instance_config_passes_dagsters_validation(deployment: str, tmp_path: Path) -> None:
    """The file as shipped: the instance schema (storage on PostgreSQL through DAGSTER_PG_URL,
    `concurrency` and the run queue not both), then the launcher's own config schema."""
    config = _config(deployment)
    validated, _ = dagster_instance_config(str(_write_home(tmp_path, config)))
    assert validated["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    launcher = validated["run_launcher"]
    klass = class_from_code_pointer(launcher["module"], launcher["class"])
    assert klass is LAUNCHERS[deployment]
    result = process_config(resolve_to_config_type(klass.config_type()), launcher["config"])
    assert result.success, [error.message for error in result.errors or []]


@pytest.mark.parametrize("deployment", sorted(LAUNCHERS))
def test_the_instance_loads_its_launcher_queue_pools_and_monitoring(
    deployment: str, tmp_path: Path
) -> None:
    """Everything but the storage (SQLite here) and, for Kubernetes, how the cluster is reached."""
    config = _config(deployment)
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    if deployment == "k8s":
        (tmp_path / "kubeconfig").write_text(KUBECONFIG)
        config["run_launcher"]["config"].update(
            load_incluster_config=False, kubeconfig_file=str(tmp_path / "kubeconfig")
        )
    with dg.DagsterInstance.from_config(str(_write_home(tmp_path / "home", config))) as instance:
        assert isinstance(instance.run_launcher, LAUNCHERS[deployment])
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()
        queue = concurrency.run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 4
        assert [limit["key"] for limit in queue.tag_concurrency_limits] == ["dagster/backfill"]
        # one pool per destination account, one step at a time in each
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled
        # a crashed run's pool slot is given back
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_the_docker_runs_get_the_database_urls_and_the_shared_state() -> None:
    launcher = _config("docker")["run_launcher"]["config"]
    assert {"DAGSTER_PG_URL", "CONNECTOR_STATE_DB_URL", "CONNECTOR_OUTBOX_URL"} <= set(
        launcher["env_vars"]
    )
    assert launcher["container_kwargs"]["volumes"]["connector-state"]["bind"] == (
        "/opt/dagster/state"
    )


def test_the_kubernetes_run_pods_are_valid_kubernetes_objects() -> None:
    """The raw Kubernetes config each run's Job gets: every key a field of its model."""
    run_config = _config("k8s")["run_launcher"]["config"]["run_k8s_config"]
    models = {
        "container_config": kubernetes.client.V1Container,
        "pod_spec_config": kubernetes.client.V1PodSpec,
        "job_spec_config": kubernetes.client.V1JobSpec,
    }
    assert set(run_config) <= set(models)
    for part, model in models.items():
        if part in run_config:
            k8s_snake_case_dict(model, run_config[part])  # raises on a key the model lacks
    with pytest.raises(Exception, match="Unexpected keys"):
        k8s_snake_case_dict(kubernetes.client.V1Container, {"resource": {}})
