"""Waiting for the background recorders a `connector sync` leaves (``connector.defs.recorder``)
before a test reads the Dagster instance they write."""

from __future__ import annotations

import time
from pathlib import Path

from connector.defs import run_log

RECORDING_BOUND_S = 300.0  # a bound on the wait, not a measurement


def wait_for_recorders(state_dir: Path, *, none_failed: bool = True) -> None:
    """Until no run log of ``state_dir`` is pending (each recorded, or failed); with
    ``none_failed``, then assert none failed."""
    folder = run_log.logs_dir(state_dir)
    deadline = time.monotonic() + RECORDING_BOUND_S
    while any(folder.glob(f"*{run_log.PENDING}")):
        assert time.monotonic() < deadline, f"the recorders of {state_dir} did not finish"
        time.sleep(0.2)
    if none_failed:
        assert run_log.failed(state_dir) == []
