"""The production topology on one machine, started as an operator starts it (deploy/README.md):
a code server, `dagster-webserver` and `dagster-daemon` as separate processes on
deploy/dagster.yaml (storage on PostgreSQL, queued runs, pools) and deploy/workspace.yaml, the
ledger on PostgreSQL, the sandbox as both APIs. After `connector db upgrade` and `connector
deploy init`, a three-day backfill of one mapping (its delivery taken along) and the nightly
job of two days are launched at once through the webserver's GraphQL API; then every run
succeeds, no pool slot is left held, every poll run the status_poll sensor launched polled a
batch, and the sandbox holds every profile of both accounts with its current values.

The sandbox's clock stands still until those runs have ended, so Target reports every batch
as processing and the runs' own polls settle nothing: what they leave open is the sensor's
to follow once the clock moves on. A batch sharing profiles with one still processing waits
in the queue for the hourly `off_peak_drain`; the test launches that job itself (the
schedules are stopped) whenever only such batches are left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml
from sqlalchemy import func, select

from connector.defs.assets import STAGES
from connector.defs.jobs import DRAIN, NIGHTLY, POLL
from connector.defs.pools import destination_pools
from connector.delivery.poll import pollable_batch_count
from connector.destinations.accounts import open_destination
from connector.ledger import Batch, Ledger, destination_key
from connector.mapping import load_mappings
from connector.profiles import store as profile_store
from connector.reporting.queries import unfinished_batch_ids
from connector.sandbox.testing import running_sandbox
from connector.settings import Settings, load_settings
from tests.defs.conftest import ROOT

LOCATION = "profile_sync_connector"
REPOSITORY = "__repository__"  # the repository name of a code location's Definitions
BACKFILL_MAPPING = "pos_purchases"  # its account: target
BACKFILL_DAYS = ["2026-11-19", "2026-11-20", "2026-11-21"]  # the days of the sample POS files
DELIVERY = ["outbox", "submissions", "status_report"]
NIGHTLY_DAYS = ["2026-11-20", "2026-11-21"]
PROCESSING_DELAY_S = 1.0
DEADLINE_S = 540
# The runs the test launches execute their steps in the run's process: a process per step
# (the default executor) costs a Dagster import each, minutes of CPU over these runs; the
# pools hold steps alike in both executors.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
ON_ITS_WAY = {
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class Processes:
    """Long-running processes started for the test, each in a process group of its own (with
    what it starts: the code server's gRPC server and the runs), logging to a file in the
    workdir; each group stopped as a whole, in reverse order."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, *args: str) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name(args[0])), *args[1:]],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((name, proc, log))

    def check_alive(self) -> None:
        for name, proc, log in self.started:
            assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{_tail(log)}"

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{_tail(log, 1500)}" for name, _, log in self.started)

    def stop(self) -> None:
        for _, proc, _ in reversed(self.started):
            _signal_group(proc.pid, signal.SIGTERM)
        for _, proc, _ in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            _signal_group(proc.pid, signal.SIGKILL)  # what is left of the group
            proc.wait(timeout=30)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _settings_environment(
    workdir: Path, sandbox_url: str, ledger_url: str, dagster_pg_url: str
) -> dict[str, str]:
    """The environment every process of the deployment gets (deploy/README.md, step 4)."""
    return {
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "DAGSTER_PG_URL": dagster_pg_url,
        "CONNECTOR_STATE_DIR": str(workdir / "state"),
        "CONNECTOR_STATE_DB_URL": ledger_url,
        "CONNECTOR_MAPPINGS_DIR": str(workdir / "mappings"),
        "CONNECTOR_TIMEZONE": "Europe/Amsterdam",
        "CONNECTOR_PARTITION_START": "2026-11-01",
        "CONNECTOR_OFF_PEAK": "00:00-24:00",  # submitting is allowed now
        "CONNECTOR_TARGET__BASE_URL": sandbox_url,
        "CONNECTOR_TARGET__CLIENT_CODE": "demo",
        "CONNECTOR_TARGET__API_VERSION": "v2",
        "CONNECTOR_TARGET__POLL_INTERVAL_S": "1",
        "CONNECTOR_TARGET__CALLS_PER_MINUTE": "100000",
        "CONNECTOR_COPERNICA__BASE_URL": f"{sandbox_url}/v3",
        "CONNECTOR_COPERNICA__DATABASE": "demo",
    }


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    reply.raise_for_status()
    body = reply.json()
    assert "errors" not in body, body["errors"]
    return dict(body["data"])


LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _wait_for_location(url: str, processes: Processes, deadline: float) -> None:
    """Until the webserver has loaded the code location from the code server."""
    last: object = None
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            entries = _graphql(url, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            last = entries
            if entries and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"the code location did not load: {last}\n{processes.logs()}")


INSTIGATOR_QUERY = """
query ($sensor: SensorSelector!, $schedule: ScheduleSelector!, $sensors: Boolean!) {
  sensorOrError(sensorSelector: $sensor) @include(if: $sensors) {
    __typename ... on Sensor { id } ... on Error { message } }
  scheduleOrError(scheduleSelector: $schedule) @skip(if: $sensors) {
    __typename ... on Schedule { id } ... on Error { message } } }
"""
STOP_SENSOR = """
mutation ($id: String!) { stopSensor(id: $id) {
    __typename ... on StopSensorMutationResult { instigationState { status } }
    ... on Error { message } } }
"""
STOP_SCHEDULE = """
mutation ($id: String!) { stopRunningSchedule(id: $id) {
    __typename ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message } } }
"""


def _stop(url: str, kind: str, name: str) -> None:
    """Stop the sensor or schedule ``name`` (kind: ``sensor`` or ``schedule``)."""
    where = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    found = _graphql(
        url,
        INSTIGATOR_QUERY,
        {
            "sensor": {**where, "sensorName": name},
            "schedule": {**where, "scheduleName": name},
            "sensors": kind == "sensor",
        },
    )[f"{kind}OrError"]
    assert found["__typename"] == kind.capitalize(), found
    if kind == "sensor":
        state = _graphql(url, STOP_SENSOR, {"id": found["id"]})["stopSensor"]
        assert state["instigationState"]["status"] == "STOPPED", state
    else:
        state = _graphql(url, STOP_SCHEDULE, {"id": found["id"]})["stopRunningSchedule"]
        assert state["scheduleState"]["status"] == "STOPPED", state


BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message } ... on PythonError { stack } } }
"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message } ... on PythonError { stack } } }
"""


def _launch_backfill(url: str, mapping: str, days: list[str]) -> str:
    params = {
        "partitionNames": days,
        "assetSelection": [{"path": [mapping, stage]} for stage in STAGES]
        + [{"path": ["target", asset]} for asset in DELIVERY],
        "fromFailure": False,
        "runConfigData": IN_PROCESS,
    }
    launched = _graphql(url, BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return str(launched["backfillId"])


def _launch_job(url: str, job: str, tags: dict[str, str] | None = None) -> str:
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": job,
        },
        "runConfigData": IN_PROCESS,
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    launched = _graphql(url, LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("connector")), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _quiet(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    """The backfill has made all its runs and no run is on its way."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None or backfill.status.value == "REQUESTED":  # its runs not all made yet
        return False
    return not any(run.status in ON_ITS_WAY for run in instance.get_runs())


def _batch_states(ledger: Ledger) -> dict[str, int]:
    with ledger.session() as session:
        return dict(session.execute(select(Batch.state, func.count()).group_by(Batch.state)).all())


class StillClock:
    """The sandbox's time: standing still until ``release``, then the real time."""

    def __init__(self) -> None:
        self.still_at: float | None = time.time()

    def __call__(self) -> float:
        return self.still_at if self.still_at is not None else time.time()

    def release(self) -> None:
        self.still_at = None


def _failures(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    errors = [e.dagster_event.step_failure_data.error for e in events if e.dagster_event]
    return f"{run.job_name} {run.tags}: " + "; ".join(
        err.to_string()[-1500:] for err in errors if err is not None
    )


def _batches_polled(instance: dg.DagsterInstance, run_id: str) -> int:
    """The batches a run's status_report assets polled (their `batches_polled` metadata)."""
    polled = 0
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = event.asset_materialization
        if materialization is not None and materialization.asset_key.path[-1] == "status_report":
            polled += int(materialization.metadata["batches_polled"].value)  # type: ignore[arg-type]
    return polled


def _current_profiles(settings: Settings, ledger: Ledger, destination: str) -> dict[str, dict]:
    """Every profile of the account: its identity -> the current non-empty value of each
    param, over every mapping's profile store at the account."""
    profiles: dict[str, dict[str, Any]] = {}
    for ref in profile_store.stores(ledger, destination_key(destination, settings)):
        for row in profile_store.snapshot_rows(ref):
            values = profiles.setdefault(row["_identity"], {})
            values.update(
                {k: v for k, v in row.items() if not k.startswith("_") and v not in (None, "")}
            )
    return profiles


def _read_back(settings: Settings, destination: str, profiles: dict[str, dict]) -> list[str]:
    """The profiles the destination does not hold with these values (read back one by one)."""
    mappings, _ = load_mappings(settings.mappings_dir)
    (identity_type,) = {m.identity.type for m in mappings if m.destination == destination}
    key = destination_key(destination, settings)
    dest = open_destination(settings, destination, key)
    wrong = []
    try:
        for identity, values in sorted(profiles.items()):
            stored = dest.read_back(identity, identity_type)
            if stored is None or any(stored.get(p) != v for p, v in values.items()):
                wrong.append(f"{identity}: expected {values}, stored {stored}")
    finally:
        dest.close()
    return wrong


@pytest.fixture
def deployment_env(  # type: ignore[no-untyped-def]
    workdir: Path, sandbox_still, ledger_pg_url: str, dagster_pg_url: str, monkeypatch
) -> Iterator[dict[str, str]]:
    """The project directory of the deployment (sample mappings and exports, definitions.py,
    DAGSTER_HOME with deploy/dagster.yaml unchanged) and the environment of its processes;
    this test process reads the same settings and instance."""
    shutil.copy(ROOT / "definitions.py", workdir / "definitions.py")
    shutil.copy(ROOT / "deploy" / "dagster.yaml", workdir / "dagster_home" / "dagster.yaml")
    settings_env = _settings_environment(workdir, sandbox_still.url, ledger_pg_url, dagster_pg_url)
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    yield {**os.environ, **settings_env}


@pytest.fixture
def clock() -> StillClock:
    return StillClock()


@pytest.fixture
def sandbox_still(clock: StillClock):  # type: ignore[no-untyped-def]
    with running_sandbox(
        clock=clock, processing_delay_s=PROCESSING_DELAY_S, calls_per_minute=100_000
    ) as sb:
        yield sb


@pytest.mark.timeout(DEADLINE_S + 60)
def test_backfill_and_two_nightly_runs_at_once_on_the_deployed_topology(
    workdir: Path, deployment_env: dict[str, str], clock: StillClock
) -> None:
    env = deployment_env
    assert "applied 0001" in _cli(env, workdir, "db", "upgrade")
    settings = load_settings()
    pools = destination_pools(settings)
    assert pools == ["copernica-demo", "target-demo"]
    assert _cli(env, workdir, "deploy", "init").splitlines()[1:] == [
        f"{pool}: created, limit 1" for pool in pools
    ]

    code_port, web_port = _free_port(), _free_port()
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["location_name"] == LOCATION
    server.update(host="127.0.0.1", port=code_port)
    (workdir / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    url = f"http://127.0.0.1:{web_port}/graphql"
    processes = Processes(workdir, env)
    deadline = time.monotonic() + DEADLINE_S
    ledger = Ledger(settings.ledger_url)
    try:
        processes.start(
            "code-server", "dagster", "code-server", "start", "-h", "127.0.0.1",
            "-p", str(code_port), "-f", "definitions.py", "--location-name", LOCATION,
        )  # fmt: skip
        processes.start(
            "webserver", "dagster-webserver", "-w", "workspace.yaml",
            "-h", "127.0.0.1", "-p", str(web_port),
        )  # fmt: skip
        _wait_for_location(url, processes, deadline)
        # Only the runs the test launches, and the sensor under test: the pos_files sensor
        # would stage the POS days a third time, and a schedule firing (the hourly drain, the
        # nightly at 00:15) would poll in the sensor's place.
        _stop(url, "sensor", "pos_files")
        _stop(url, "schedule", "off_peak_drain")
        _stop(url, "schedule", "nightly")
        backfill_id = _launch_backfill(url, BACKFILL_MAPPING, BACKFILL_DAYS)
        nightly_ids = [_launch_job(url, NIGHTLY, {"dagster/partition": d}) for d in NIGHTLY_DAYS]
        # the daemon starts on a full queue: the runs reach the accounts' pools together
        processes.start("daemon", "dagster-daemon", "run", "-w", "workspace.yaml")
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:

            def wait(what: str, done: Any) -> None:
                while not (_quiet(instance, backfill_id) and done()):
                    assert time.monotonic() < deadline, (
                        f"{what}: not within {DEADLINE_S} s; batches {_batch_states(ledger)}, "
                        f"runs {[(r.job_name, r.status.value) for r in instance.get_runs()]}"
                        f"\n{processes.logs()}"
                    )
                    processes.check_alive()
                    time.sleep(2)

            wait("the runs", lambda: True)
            states = _batch_states(ledger)
            assert states.get("submitted") and set(states) <= {"submitted", "queued", "complete"}
            clock.release()
            drains = []
            while unfinished_batch_ids(ledger):
                if pollable_batch_count(ledger):
                    wait("the sensor's poll", lambda: not pollable_batch_count(ledger))
                else:  # only batches that waited for one processing with the same profiles
                    assert set(_batch_states(ledger)) <= {"queued", "complete"}
                    drains.append(_launch_job(url, DRAIN))
                    wait("the drain", lambda: True)

            runs = instance.get_runs()
            failed = [_failures(instance, r) for r in runs if not r.is_success]
            assert not failed, "\n".join(failed)
            backfill_runs = [r for r in runs if r.tags.get("dagster/backfill") == backfill_id]
            days = sorted(r.tags.get("dagster/partition", "") for r in backfill_runs)
            assert days == ["", *BACKFILL_DAYS], days  # a run per day, then the delivery's
            assert {r.run_id for r in runs if r.job_name == NIGHTLY} == set(nightly_ids)
            assert {r.run_id for r in runs if r.job_name == DRAIN} == set(drains)

            storage = instance.event_log_storage
            for pool in pools:
                info = storage.get_concurrency_info(pool)
                held = (info.slot_count, info.active_slot_count, info.pending_step_count)
                assert held == (1, 0, 0), (pool, info)
            assert not storage.get_concurrency_run_ids()
            limits = {p.name: p.from_default for p in storage.get_pool_limits()}
            assert limits == dict.fromkeys(pools, False)

            poll_runs = [r for r in runs if r.job_name == POLL]
            assert poll_runs, "the batches the runs left open were not polled by the sensor"
            assert {r.tags.get("dagster/sensor_name") for r in poll_runs} == {"status_poll"}
            empty = [r.run_id for r in poll_runs if _batches_polled(instance, r.run_id) == 0]
            assert not empty, f"poll runs that polled nothing: {empty} of {len(poll_runs)}"
        assert set(_batch_states(ledger)) == {"complete"}

        for destination in ("target", "copernica"):
            profiles = _current_profiles(settings, ledger, destination)
            assert profiles, destination
            wrong = _read_back(settings, destination, profiles)
            assert not wrong, f"{destination}: {len(wrong)} of {len(profiles)}: {wrong[:5]}"
    finally:
        processes.stop()
        ledger.dispose()
