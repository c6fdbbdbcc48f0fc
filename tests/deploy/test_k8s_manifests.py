"""deploy/k8s holds together without a cluster: every manifest is a valid Kubernetes object
(each key a field of the API's model), and the manifests, the kustomization, the workspace,
dagster.yaml and the image name the same objects, ports and paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

from tests.deploy.dockerfile import declared_command, declared_env, declared_ports, option

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MODELS = {
    "Deployment": kubernetes.client.V1Deployment,
    "Service": kubernetes.client.V1Service,
    "ServiceAccount": kubernetes.client.V1ServiceAccount,
    "Role": kubernetes.client.V1Role,
    "RoleBinding": kubernetes.client.V1RoleBinding,
}


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> manifest, for every resource the kustomization lists."""
    found = {}
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.fixture(scope="module")
def launcher() -> dict[str, Any]:
    return yaml.safe_load((K8S / "dagster.yaml").read_text())["run_launcher"]["config"]


def _container(deployment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if name is None or c["name"] == name)


def _mounts(container: dict[str, Any]) -> dict[str, str]:
    """Mount path -> the file of the mounted volume it shows."""
    return {m["mountPath"]: m.get("subPath", "") for m in container.get("volumeMounts", [])}


def test_every_manifest_is_a_valid_kubernetes_object(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert set(kind for kind, _ in objects) <= set(MODELS)
    for (kind, name), manifest in objects.items():
        model = MODELS[kind]
        try:
            body = {k: v for k, v in manifest.items() if k not in {"apiVersion", "kind"}}
            k8s_model_from_dict(model, k8s_snake_case_dict(model, body))
        except Exception as exc:
            pytest.fail(f"{kind} {name}: {exc}")


def test_the_kustomization_builds_what_the_launcher_and_the_pods_name(
    kustomization: dict[str, Any],
    objects: dict[tuple[str, str], dict[str, Any]],
    launcher: dict[str, Any],
) -> None:
    generated = {c["name"]: c for c in kustomization["configMapGenerator"]}
    for generator in generated.values():
        for file in generator.get("files", []) + generator.get("envs", []):
            assert (K8S / file).is_file(), file
        assert generator["options"]["disableNameSuffixHash"], generator["name"]
    assert launcher["instance_config_map"] in generated
    assert set(launcher["env_config_maps"]) <= set(generated)
    assert launcher["job_namespace"] == kustomization["namespace"]
    assert ("ServiceAccount", launcher["service_account_name"]) in objects
    assert launcher["dagster_home"] == declared_env(ROOT / "Dockerfile")["DAGSTER_HOME"]
    # each pod reads the settings and secrets the runs get
    for (kind, name), manifest in objects.items():
        if kind != "Deployment":
            continue
        sources = _container(manifest).get("envFrom", [])
        assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} == set(
            launcher["env_config_maps"]
        ), name
        assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} == set(
            launcher["env_secrets"]
        ), name
        account = manifest["spec"]["template"]["spec"]["serviceAccountName"]
        assert ("ServiceAccount", account) in objects, name


def test_the_workspace_points_at_the_code_servers_service(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    (entry,) = yaml.safe_load((K8S / "workspace.yaml").read_text())["load_from"]
    server = entry["grpc_server"]
    cmd = declared_command(ROOT / "Dockerfile")
    service = objects[("Service", server["host"])]
    assert server["port"] == service["spec"]["ports"][0]["port"]
    assert server["location_name"] == option(cmd, "--location-name")
    code = objects[("Deployment", server["host"])]
    container = _container(code)
    assert "command" not in container and "args" not in container, "runs the image's CMD"
    assert container["ports"][0]["containerPort"] == declared_ports(ROOT / "Dockerfile")[0]
    assert (
        service["spec"]["selector"].items()
        <= code["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_runs_start_from_the_image_the_kustomization_deploys(
    kustomization: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]]
) -> None:
    (image,) = kustomization["images"]
    code = _container(objects[("Deployment", "connector-code")])
    assert code["image"] == image["name"]
    current = next(e["value"] for e in code["env"] if e["name"] == "DAGSTER_CURRENT_IMAGE")
    assert current == f"{image['newName']}:{image['newTag']}"


def test_the_daemon_alone_migrates_before_it_starts(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    home = declared_env(ROOT / "Dockerfile")["DAGSTER_HOME"]
    daemon = objects[("Deployment", "connector-daemon")]
    assert daemon["spec"]["replicas"] == 1
    assert daemon["spec"]["strategy"]["type"] == "Recreate"  # never two daemons at once
    (init,) = daemon["spec"]["template"]["spec"]["initContainers"]
    script = init["command"][-1]
    assert "connector db upgrade" in script and "connector deploy init" in script
    assert _mounts(init)[f"{home}/dagster.yaml"] == "dagster.yaml"
    for name in ("connector-webserver", "connector-daemon", "connector-code"):
        deployment = objects[("Deployment", name)]
        mounts = _mounts(_container(deployment))
        assert mounts[f"{home}/dagster.yaml"] == "dagster.yaml", name
        assert "initContainers" not in deployment["spec"]["template"]["spec"] or name == (
            "connector-daemon"
        )
    for name in ("connector-webserver", "connector-daemon"):
        container = _container(objects[("Deployment", name)])
        workspace = option(container["command"], "-w", "--workspace")
        assert _mounts(container)[workspace] == "workspace.yaml", name
