"""SIGKILL at every stage, then rerun: the invariant holds.

The connector runs in real subprocesses (``crash_driver``) that kill themselves with SIGKILL at
a chosen point; the sandbox and the ledger outlive them. The rerun uses a clock past the claim
lease (as a nightly run the next day would), so the dead process's claims are recovered.

After the rerun every profile of every account holds, read back from the sandbox, exactly its
mappings' latest source values (the invariant, settled), and no row was queued twice.

A kill between the service accepting a batch and the ledger recording it makes one duplicate
unavoidable: the rerun cannot know the batch landed, so it re-sends those rows as attempt 2.
The test shows the duplicate is bounded to that one batch and harmless: the sandbox ends with
exactly the latest values (a bulk profile update is idempotent; every row is the profile's
whole managed attribute set, so v2's override rule loses nothing).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connector.ledger import BATCH_STATES, Ledger
from connector.sandbox.testing import running_sandbox

from . import invariant
from .world import World, make_settings

ROOT = Path(__file__).resolve().parents[2]
LEASE_PAST = 16 * 60  # the default claim lease is 15 min
# several Target batches per build (30 profiles), so a kill can fall between two of them
SETTINGS = {"target": {"max_batch_rows": 8}}


def run_driver(tmp: Path, url: str, *, kill: str = "", **config: Any) -> int:
    config = {"root": str(tmp), "url": url, "customers": 30, "settings": SETTINGS, **config}
    path = tmp / "driver.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "RELIABILITY_KILL": kill}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_driver", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"driver failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.returncode


PREPARE_POINTS = [
    "extract:2",
    "store-publish:2",
    "batch-write:3",
    "batch-register:2",
    "outbox-mark:1",
]
DELIVERY_POINTS = ["submit:2", "poll:1", "settle:1", "requeue:1", "requeue-registered:1"]


@pytest.mark.parametrize("kill", PREPARE_POINTS + DELIVERY_POINTS)
def test_sigkill_then_rerun(tmp_path: Path, kill: str, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    world = World(tmp_path / "world", seed=3, customers=30)
    day0 = world.night(0)
    stuck = kill.startswith("requeue")
    with running_sandbox(processing_delay_s=0.05, stuck_rate=1.0 if stuck else 0.0, seed=1) as sb:
        killed = -signal.SIGKILL
        if kill in PREPARE_POINTS:
            assert run_driver(tmp_path, sb.url, kill=kill, days=[day0], deliver=False) == killed
        else:
            assert run_driver(tmp_path, sb.url, kill=kill, days=[day0]) == killed
            sb.set_faults(stuck_rate=0.0)
        # the rerun (the next night's run, past the claim lease) also runs the next day
        day1 = world.night(1)
        assert run_driver(tmp_path, sb.url, days=[day0, day1], now_offset_s=LEASE_PAST) == 0
        settings = make_settings(tmp_path, sb.url, mappings_dir=world.root / "mappings", **SETTINGS)
        ledger = Ledger(settings.ledger_url)
        try:
            report = invariant.check(
                ledger, settings, sandbox=sb, expected=world.expected, settled=True
            )
        finally:
            ledger.dispose()
    assert report.ok, f"after SIGKILL at {kill}: {report}"
    # a duplicate is only possible when the kill fell between accept and record, one batch
    ambiguous = kill.startswith("submit")
    assert report.ambiguous_resends <= (1 if ambiguous else 0), report
    assert report.duplicate_rows <= (SETTINGS["target"]["max_batch_rows"] if ambiguous else 0), (
        report
    )
    figures_recorder(
        f"crash_{kill.split(':')[0]}",
        {
            "scenario": f"SIGKILL at {kill}, rerun",
            "rows": report.rows,
            "delivered": report.delivered,
            "ambiguous_resends": report.ambiguous_resends,
            "duplicate_rows": report.duplicate_rows,
            "profiles": report.profiles,
            "profile_fates": report.profile_fates,
            "invariant_held": report.ok,
        },
    )


# Every state of the batch diagram (connector.ledger.BATCH_STATES), entered by a committed
# write: a SIGKILL just before that commit and just after it. Each state gets the faults that
# make a first run reach it; the rerun runs without faults.
STATE_FAULTS: dict[str, dict[str, Any]] = {
    "queued": {"fail_rate": 1.0},  # claimed, refused on every try: back to the queue
    "failed": {"drop_rate": 1.0, "drop_when": "after"},  # accepted, answer lost
    "stuck": {"stuck_rate": 1.0},
    "expired": {"status_ttl_s": 0.01},  # the status is gone when polled
    "superseded": {"stuck_rate": 1.0},  # the stuck batch's rows re-queued as attempt 2
    "dead": {"stuck_rate": 1.0},  # ... with one attempt only
}
STATE_POINTS = [("insert", "queued")] + [("update", s) for s in BATCH_STATES]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kind,state", STATE_POINTS, ids=[f"{k}-{s}" for k, s in STATE_POINTS])
def test_sigkill_at_every_state_change_then_rerun(
    tmp_path: Path, kind: str, state: str, when: str
) -> None:
    world = World(tmp_path / "world", seed=4, customers=12)
    day0 = world.night(0, crm_changes=12, pos_rows=6)
    faults = dict(STATE_FAULTS.get(state, {})) if kind == "update" else {}  # a copy: popped below
    ttl = faults.pop("status_ttl_s", None)
    options = {"status_ttl_s": ttl} if ttl else {}
    settings = {
        **SETTINGS,
        "pending_timeout_h": 0.0005,  # stuck after about 2 s
        "max_attempts": 1 if state == "dead" else 4,
    }
    kill = f"state:{kind}:{state}:{when}"
    with running_sandbox(processing_delay_s=0.05, seed=1, **faults, **options) as sb:
        code = run_driver(tmp_path, sb.url, kill=kill, days=[day0], settings=settings)
        assert code == -signal.SIGKILL, f"{kill}: the first run never reached it"
        sb.set_faults(fail_rate=0.0, drop_rate=0.0, stuck_rate=0.0)
        day1 = world.night(1, crm_changes=4, pos_rows=3)
        rerun = run_driver(
            tmp_path, sb.url, days=[day0, day1], now_offset_s=LEASE_PAST, settings=settings
        )
        assert rerun == 0, f"{kill}: the rerun did not settle"
        check = make_settings(tmp_path, sb.url, mappings_dir=world.root / "mappings", **settings)
        ledger = Ledger(check.ledger_url)
        try:
            report = invariant.check(
                ledger,
                check,
                sandbox=sb,
                expected=None if state == "dead" else world.expected,
                settled=True,
            )
        finally:
            ledger.dispose()
    assert report.ok, f"after SIGKILL {when} a batch became {state}: {report}"
    if state == "dead":
        assert set(report.profile_fates) <= {"landed", "dead"}, str(report)
    else:
        assert set(report.profile_fates) == {"landed"}, str(report)
