"""The image's recipe, without Docker: the Dockerfile's COPY and `pip install` steps replayed in
a fresh venv, then its CMD started; the code server it starts serves the connector's assets.

A `docker build` is not possible where the tests run; this is the part of it that can rot
unseen (a dependency or package file the install misses, a command that no longer starts).
`pip` resolves the project from PyPI (or the configured index) as the image build would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
from dagster._grpc.client import DagsterGrpcClient

from connector.defs.jobs import NIGHTLY
from tests.deploy.dockerfile import Replayed, build_context, option_index, replay

ROOT = Path(__file__).resolve().parents[2]

# one install for the module's tests: keep them on one xdist worker (`make test`: loadgroup)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1500),
    pytest.mark.xdist_group("dockerfile_recipe"),
]
IMAGE = "registry.example.com/profile-sync-connector:test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _venv_env(venv: Path, env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment (pip's index settings, HOME) with the image's ENV on top and
    the venv first on PATH, as the image's interpreter is."""
    merged = {**os.environ, **env}
    merged["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    merged["VIRTUAL_ENV"] = str(venv)
    merged.pop("PYTHONPATH", None)  # only what the recipe installed is importable
    return merged


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Replayed, Path]:
    """The Dockerfile replayed: its context, a fresh venv holding what it installs, its files."""
    base = tmp_path_factory.mktemp("image")
    context, root, venv = base / "context", base / "root", base / "venv"
    build_context(ROOT, context)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)

    def install(command: str, cwd: Path, env: Mapping[str, str]) -> None:
        done = subprocess.run(
            ["sh", "-c", command],
            cwd=cwd,
            env=_venv_env(venv, env),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (
            f"RUN {command} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )

    replayed = replay(ROOT / "Dockerfile", context, root, install)
    return replayed, venv


def test_the_recipe_installs_the_package_and_every_launcher(image: tuple[Replayed, Path]) -> None:
    replayed, venv = image
    assert replayed.base.startswith("python:3.11"), replayed.base
    assert replayed.installs, "the Dockerfile has no RUN pip install line"
    python = str(venv / "bin" / "python")
    env = _venv_env(venv, replayed.env)
    # the connector the image runs is the installed one, package data and all, not a source
    # copy in its working folder
    where = subprocess.run(
        [python, "-c", "import connector; print(connector.__file__)"],
        cwd=replayed.workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    # every file of the package made it into the wheel: modules, migrations, templates
    installed = Path(where).parent
    source = ROOT / "connector"
    missing = [
        str(path.relative_to(source))
        for path in source.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".md"  # notes for readers of the source, not package data
        and not (installed / path.relative_to(source)).is_file()
    ]
    assert not missing, f"not installed by the recipe: {missing}"
    # the daemon and every run load their deployment's dagster.yaml: its launcher must import
    launchers = sorted(
        {
            yaml.safe_load(path.read_text())["run_launcher"]["module"]
            for path in (ROOT / "deploy").glob("*/dagster.yaml")
            if "run_launcher" in yaml.safe_load(path.read_text())
        }
    )
    assert launchers == ["dagster_docker", "dagster_k8s"]
    imported = subprocess.run(
        [python, "-c", f"import dagster_postgres, {', '.join(launchers)}"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]


@pytest.fixture
def code_server(image: tuple[Replayed, Path], tmp_path: Path) -> Iterator[tuple[int, str]]:
    """The image's CMD on a free port on loopback: (port, location name); stopped afterwards."""
    replayed, venv = image
    assert not replayed.entrypoint, "an ENTRYPOINT would wrap every container's command"
    argv = list(replayed.cmd)
    port_at = option_index(argv, "--port", "-p")
    assert [int(argv[port_at])] == replayed.exposed, "CMD's port is not the EXPOSEd one"
    port = _free_port()
    argv[port_at] = str(port)
    argv[option_index(argv, "--host", "-h")] = "127.0.0.1"
    location = argv[option_index(argv, "--location-name")]
    # what compose and the Kubernetes manifests set: the image each run starts from
    env = _venv_env(venv, {**replayed.env, "DAGSTER_CURRENT_IMAGE": IMAGE})
    log = (tmp_path / "code_server.log").open("wb")
    proc = subprocess.Popen(
        argv,
        cwd=replayed.workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server starts a child process: stop the whole group
    )
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp_path / "code_server.log").read_text()[-3000:]
            try:
                client.ping("up?")
                break
            except DagsterUserCodeUnreachableError:
                assert time.monotonic() < deadline, "the code server did not answer within 300 s"
                time.sleep(1)
        # the probe compose and the Kubernetes manifests use, from the image's own CLI
        health = [str(venv / "bin" / "dagster"), "api", "grpc-health-check", "-p", str(port)]
        checked = subprocess.run(health, env=env, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        yield port, location
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def test_the_image_command_serves_the_code_location(code_server: tuple[int, str]) -> None:
    port, location_name = code_server
    origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port, location_name=location_name)
    with dg.DagsterInstance.ephemeral() as instance, origin.create_location(instance) as location:
        repositories = location.get_repositories()
        assert len(repositories) == 1
        repository = next(iter(repositories.values()))
        keys = {node.asset_key.to_user_string() for node in repository.get_asset_node_snaps()}
        for mapping in ("crm_customers", "pos_purchases", "crm_copernica"):
            assert f"{mapping}/source_rows" in keys
        for destination in ("target", "copernica"):
            assert f"{destination}/submissions" in keys
        assert NIGHTLY in {job.name for job in repository.get_all_jobs()}
        # the run launchers start each run from the image the code location reports
        assert location.container_image == IMAGE
