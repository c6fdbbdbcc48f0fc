"""One state: `make demo`, `connector status/sync` and the UI see the same ledger and runs.

The demo runs once (in a process of its own, in a copy of the project); the tests then read
its state the ways an operator does: `connector status` in the same folder and through the
printed export line, the Dagster webserver's GraphQL (the UI's API) for the runs of a job, and
the POS sensor started on that state.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from connector.defs import build_definitions
from connector.defs.jobs import NIGHTLY
from connector.defs.resources import ConnectorResource
from tests.defs.conftest import ROOT
from tests.recorders import wait_for_recorders

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
LOCATION = "profile_sync_connector"  # workspace.yaml's location_name
REPOSITORY = "__repository__"  # the one `Definitions` of definitions.py


@dataclass
class Demo:
    folder: Path
    output: str

    @property
    def state(self) -> Path:
        return self.folder / ".connector"

    @property
    def home(self) -> Path:
        return self.state / "dagster_home"


def _project_copy(folder: Path) -> Path:
    """What `make demo` runs in: the mappings, the samples, the code location."""
    folder.mkdir(parents=True)
    for name in ("mappings", "sample_exports"):
        shutil.copytree(ROOT / name, folder / name)
    for name in ("definitions.py", "workspace.yaml"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without connector settings or DAGSTER_HOME (an operator's
    shell), with the worktree's `connector` importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DAGSTER_HOME"
        and not (key.startswith("CONNECTOR_") and not key.startswith("CONNECTOR_TEST_"))
    }
    return env | {"PYTHONPATH": str(ROOT), "COLUMNS": "200"} | extra


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


def _demo(folder: Path, **env: str) -> Demo:
    output = _run([sys.executable, "-m", "connector.demo"], folder, _clean_env(**env))
    return Demo(folder, output)


def _exported(output: str) -> dict[str, str]:
    """The variables of the `export ...` line the demo printed."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("export ")]
    assert len(lines) == 1, output[-3000:]
    return dict(word.split("=", 1) for word in shlex.split(lines[0])[1:])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`make demo` in a fresh copy of the project, no CONNECTOR_STATE_DIR set."""
    return _demo(_project_copy(tmp_path_factory.mktemp("demo") / "project"))


def test_status_in_the_demos_folder_sees_its_ledger(demo: Demo) -> None:
    assert "Telemetry:" not in demo.output and "No dagster instance" not in demo.output
    assert _exported(demo.output) == {
        "CONNECTOR_STATE_DIR": str(demo.state),
        "DAGSTER_HOME": str(demo.home),
    }
    status = _run([str(BIN / "connector"), "status"], demo.folder, _clean_env())
    assert "target:demo" in status and "copernica:demo" in status, status
    assert "outbox is empty" not in status
    # elsewhere, the export line points at the same state
    elsewhere = demo.folder.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    traced = _run(
        [str(BIN / "connector"), "trace", "C00015"],
        elsewhere,
        _clean_env(**_exported(demo.output)),
    )
    assert "Profile C00015 at target:demo" in traced, traced
    assert list(elsewhere.iterdir()) == [], "trace wrote state where it was run"


def test_the_demo_honours_connector_state_dir(tmp_path: Path) -> None:
    folder = _project_copy(tmp_path / "project")
    state = tmp_path / "my state"
    demo = _demo(folder, CONNECTOR_STATE_DIR=str(state))
    assert _exported(demo.output) == {
        "CONNECTOR_STATE_DIR": str(state),
        "DAGSTER_HOME": str(state / "dagster_home"),
    }
    assert (state / "ledger.db").is_file() and (state / "dagster_home" / "dagster.yaml").is_file()
    assert not (folder / ".connector").exists()
    status = _run(
        [str(BIN / "connector"), "status"], tmp_path, _clean_env(**_exported(demo.output))
    )
    assert "target:demo" in status, status


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Webserver:
    """`dagster-webserver -w workspace.yaml` on the demo's state: the UI's GraphQL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        reply = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body
        return dict(body["data"])


@pytest.fixture
def webserver(demo: Demo) -> Iterator[Webserver]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=demo.folder,
        env=_clean_env(**_exported(demo.output)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Webserver(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            try:
                if server.query("{ version }"):
                    break
            except (httpx.HTTPError, AssertionError):
                pass
            assert time.monotonic() < deadline, "the webserver did not answer within 180 s"
            time.sleep(1)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=60)


JOB_RUNS = """
query JobRuns($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline {
      runs { runId tags { key value } repositoryOrigin { repositoryLocationName repositoryName } }
    }
  }
}
"""

REEXECUTE = """
mutation Reexecute($params: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId rootRunId jobName } }
    ... on PythonError { message }
  }
}
"""


def test_cli_runs_show_under_their_job_and_can_be_re_executed(
    demo: Demo, webserver: Webserver
) -> None:
    output = _run(
        [str(BIN / "connector"), "sync", "--partition", "2026-11-21", "--dry-run"],
        demo.folder,
        _clean_env(CONNECTOR_PARTITION_START="2026-11-01"),
    )
    assert "Telemetry:" not in output and "No dagster instance" not in output
    # the sync's runs are recorded by a process it started in the background
    wait_for_recorders(demo.state)
    selector = {
        "pipelineName": NIGHTLY,
        "repositoryName": REPOSITORY,
        "repositoryLocationName": LOCATION,
    }
    job = webserver.query(JOB_RUNS, selector=selector)["pipelineOrError"]
    assert job["__typename"] == "Pipeline", job
    runs = job["runs"]
    triggers = [{t["key"]: t["value"] for t in run["tags"]}["connector/trigger"] for run in runs]
    # the demo's runs (one per sample day, then the delivery) and the CLI's dry run
    assert triggers.count("sync") == 4 and triggers.count("sync delivery") == 1, triggers
    assert triggers.count("sync dry-run") == 1, triggers
    for run in runs:
        assert run["repositoryOrigin"] == {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
        }
    cli_run = runs[triggers.index("sync dry-run")]["runId"]
    launched = webserver.query(REEXECUTE, params={"parentRunId": cli_run, "strategy": "ALL_STEPS"})
    again = launched["launchRunReexecution"]
    assert again["__typename"] == "LaunchRunSuccess", again
    assert again["run"]["rootRunId"] == cli_run and again["run"]["jobName"] == NIGHTLY


def test_sensors_started_on_the_demos_state_rerun_no_ingested_file(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(demo.folder)
    for key, value in _exported(demo.output).items():
        monkeypatch.setenv(key, value)
    connector = ConnectorResource.from_env()
    defs = build_definitions(connector.settings(), connector)
    sensor = defs.resolve_sensor_def("pos_files")
    instance = dg.DagsterInstance.get()  # the demo's (DAGSTER_HOME)
    try:
        first = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=None, definitions=defs)
        )
        assert first.run_requests == [], [r.partition_key for r in first.run_requests]
        # the ingested files are the registry's to know: the cursor holds none of them
        cursor = json.loads(first.cursor or "{}")
        assert cursor["mappings"]["pos_purchases"]["waiting"] == {}

        changed = demo.folder / "sample_exports" / "pos" / "pos_2026-11-20.csv"
        with changed.open("a", encoding="utf-8") as handle:
            handle.write(changed.read_text(encoding="utf-8").splitlines()[1] + "\n")
        second = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs)
        )
        assert [r.partition_key for r in second.run_requests] == ["2026-11-20"]
        assert re.fullmatch(
            r"pos_purchases:2026-11-20:pos_2026-11-20\.csv@[0-9a-f]{16}",
            second.run_requests[0].run_key or "",
        )
    finally:
        instance.dispose()
