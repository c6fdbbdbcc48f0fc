"""What one direct run did, step by step: written by `connector sync` (``connector.defs.direct``)
for the recorder (``connector.defs.recorder``), which records it in the Dagster instance.

A log is a pickle file in ``<state_dir>/run_logs/``, named by its run id: ``.pending`` until
the recorder has recorded it (then it is removed), ``.failed`` (beside a ``.log`` of why)
when the recorder could not, so the next sync reports it and tries again (and a ``.pending``
log left long after its sync, by a recorder stopped before it finished). Pickled, not
JSON: the steps' outputs are the plain dataclasses of ``connector.defs.steps``, and a log is
only read by the same installation that wrote it. This module imports no Dagster.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_LOGS_DIR = "run_logs"
PENDING, FAILED, WHY = ".pending", ".failed", ".log"
# a pending log this old was left by a recorder that did not finish (recording one takes
# seconds): the next sync records it again
STALE_PENDING_S = 15 * 60


@dataclass(frozen=True)
class StepFailure:
    """A step that raised: the class name of its error and its message."""

    error: str
    message: str


class ReplayedStepFailure(Exception):
    """A failure of a direct run's step, raised again when its run is recorded."""


@dataclass
class RunLog:
    """One run of the nightly job as `connector sync` ran it without Dagster."""

    run_id: str
    job: str
    partition: str
    # the asset keys the run selected, each as its path
    selection: list[tuple[str, ...]]
    tags: dict[str, str]
    # the connector resource's own fields the run used (force_window, poll_timeout_s)
    resource_fields: dict[str, Any]
    started_at: float
    ended_at: float = 0.0
    # step key -> the step's output (``connector.defs.steps``) or its ``StepFailure``;
    # a step that did not run (downstream of a failure) is missing
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, StepFailure]:
        return {k: v for k, v in self.steps.items() if isinstance(v, StepFailure)}


def new_run_id() -> str:
    """A run id as Dagster makes them (a UUID4)."""
    return str(uuid.uuid4())


def logs_dir(state_dir: Path) -> Path:
    return state_dir / RUN_LOGS_DIR


def write_pending(state_dir: Path, logs: list[RunLog]) -> Path:
    """Write the runs of one sync, in order, as one pending log; its path."""
    folder = logs_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{logs[0].run_id}{PENDING}"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(logs))
    os.replace(tmp, path)
    return path


def read(path: Path) -> list[RunLog]:
    """The runs a log holds."""
    logs: list[RunLog] = pickle.loads(path.read_bytes())  # noqa: S301 (our own file)
    return logs


def replayed(logs: list[RunLog], run_id: str, step: str) -> Any:
    """The output the step ``step`` of run ``run_id`` had; its failure raised again."""
    for log in logs:
        if log.run_id == run_id:
            found = log.steps.get(step)
            if isinstance(found, StepFailure):
                # the error's own class name, as the direct run reported it
                raise type(found.error, (ReplayedStepFailure,), {})(found.message)
            if found is None:
                raise ReplayedStepFailure(f"step {step} did not run in run {run_id}")
            return found
    raise ReplayedStepFailure(f"run {run_id} is not in the log")


def failed(state_dir: Path) -> list[Path]:
    """The logs the recorder could not record, oldest first."""
    folder = logs_dir(state_dir)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{FAILED}"), key=lambda p: p.stat().st_mtime)


def stale(state_dir: Path, now: float | None = None) -> list[Path]:
    """Pending logs older than ``STALE_PENDING_S``: their recorder was stopped before it
    finished (a container that ended with the sync's process), oldest first."""
    folder = logs_dir(state_dir)
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - STALE_PENDING_S
    found = [p for p in folder.glob(f"*{PENDING}") if p.stat().st_mtime < cutoff]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def retry_failed(state_dir: Path) -> list[Path]:
    """The logs to record again: the failed ones, put back to pending, and the stale
    pending ones (``stale``); their paths. A run a log holds that is in the instance
    already is not recorded twice (``recorder.record``)."""
    again = []
    for path in failed(state_dir):
        pending = path.with_suffix(PENDING)
        path.replace(pending)
        again.append(pending)
    return again + stale(state_dir)


def launch_recorder(paths: list[Path]) -> subprocess.Popen[bytes]:
    """Start ``python -m connector.defs.recorder`` on ``paths`` in the background, detached
    from this process (its own session): the sync returns without waiting for it."""
    return subprocess.Popen(  # noqa: S603 (this interpreter, our module, our files)
        [sys.executable, "-m", "connector.defs.recorder", *map(str, paths)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
