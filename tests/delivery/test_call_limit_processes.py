"""Two drains at once, in two OS processes, against one Target client code: together they never
make more than 50 calls in any minute at the sandbox (a real HTTP server limited to 50, as
Adobe is), never pass the quota, and send every batch exactly once; on a SQLite ledger and on
a PostgreSQL one.

The sandbox counts every metered call (batchUpdate, batchStatus) and refuses one over its limit
with a 503; the test reads its counters and, to see each minute, the moment of every call it
counted (its ``allow_call`` wrapped to note the time, its answer unchanged). The run crosses a
minute on purpose: its 30 batches take more than 50 calls (a submit and at least one status
each), so the processes must wait for one another's calls to leave the window. With the limit
in each process's memory (before issue 25) each process allowed itself 50 a minute, and the
sandbox refused the calls above 50.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from connector.delivery.claims import quota_used_24h, utcnow
from connector.ledger import COMPLETE, Batch, Ledger
from connector.sandbox.testing import SandboxHandle, running_sandbox
from connector.settings import load_settings

# a fresh SQLite file or PostgreSQL database per test, as the ledger's own tests use
from tests.ledger.conftest import fresh_postgres_url, ledger_url, sqlite_ledger_url  # noqa: F401

from .helpers import profiles, queue

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 50  # Adobe's calls per minute: the connector's setting and the sandbox's alike
PROFILES = 30  # one a batch: 30 submits and at least 30 status calls
QUOTA = PROFILES  # rows: every batch fits, and one sent twice would not


def environment(tmp_path: Path, url: str, db_url: str) -> dict[str, str]:
    """The settings of every process of the deployment, as an operator sets them."""
    return {
        "CONNECTOR_STATE_DIR": str(tmp_path / "state"),
        "CONNECTOR_STATE_DB_URL": db_url,
        "CONNECTOR_MAPPINGS_DIR": str(tmp_path / "mappings"),
        "CONNECTOR_OFF_PEAK": "always",
        "CONNECTOR_TIMEZONE": "Europe/Amsterdam",
        "CONNECTOR_DAILY_QUOTA": str(QUOTA),
        "CONNECTOR_TARGET__BASE_URL": url,
        "CONNECTOR_TARGET__CLIENT_CODE": "demo",
        "CONNECTOR_TARGET__CALLS_PER_MINUTE": str(LIMIT),
        "CONNECTOR_TARGET__MAX_BATCH_ROWS": "1",
        "CONNECTOR_TARGET__VERIFY_SAMPLE": "0",
        "CONNECTOR_TARGET__TIMEOUT_S": "30",
    }


def note_call_times(sb: SandboxHandle) -> list[tuple[float, bool]]:
    """The sandbox's time and verdict of every metered call from now on."""
    noted: list[tuple[float, bool]] = []
    counted = sb.state.target.allow_call

    def allow_call(client: str, endpoint: str) -> bool:
        allowed = counted(client, endpoint)
        noted.append((sb.state.clock(), allowed))
        return allowed

    sb.state.target.allow_call = allow_call  # type: ignore[method-assign]
    return noted


def drain_at_once(tmp_path: Path, env: dict[str, str], roles: tuple[str, ...]) -> dict[str, dict]:  # type: ignore[type-arg]
    """Start one draining process per role, release them together, wait for them."""
    procs = {
        role: subprocess.Popen(
            [sys.executable, "-m", "tests.delivery.call_limit_driver", str(tmp_path), role],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in roles
    }
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready.{r}").exists() for r in roles):
            dead = {r: p.returncode for r, p in procs.items() if p.poll() is not None}
            assert not dead and time.monotonic() < deadline, f"drivers not ready: {dead}"
            time.sleep(0.01)
        (tmp_path / "go").write_text("go")
        failed = {}
        for role, proc in procs.items():
            _out, err = proc.communicate(timeout=270)
            if proc.returncode != 0:
                failed[role] = (proc.returncode, err[-3000:])
        assert not failed, f"driver(s) failed: {failed}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return {r: json.loads((tmp_path / f"result.{r}.json").read_text()) for r in roles}


def most_in_a_minute(times: list[float]) -> int:
    """The most calls in any 60 s window (as the sandbox counts: a call exactly 60 s after
    another no longer sees it)."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 60.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_two_drains_in_processes_share_the_accounts_calls_per_minute(
    tmp_path: Path,
    ledger_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running_sandbox(
        calls_per_minute=LIMIT, daily_quota=QUOTA, processing_delay_s=0.0, seed=25
    ) as sb:
        env = environment(tmp_path, sb.url, ledger_url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        ledger = Ledger(settings.ledger_url)
        ledger.upgrade()
        try:
            batches = queue(settings, ledger, profiles(PROFILES))
            assert len(batches) == PROFILES
            noted = note_call_times(sb)
            results = drain_at_once(tmp_path, env, ("first", "second"))
            sb.wait_idle()
            state = httpx.get(f"{sb.url}/_sandbox/state", timeout=10).json()
            check_exactly_once(state, ledger, results)
        finally:
            ledger.dispose()
    calls = state["target"]["clients"]["demo"]["calls"]
    assert "rate_limited" not in calls, f"the sandbox refused calls over its limit: {calls}"
    assert len(noted) == sum(calls.values()) and all(allowed for _, allowed in noted)
    assert len(noted) > LIMIT, f"{len(noted)} calls: the run never needed a second minute"
    assert most_in_a_minute([at for at, _ in noted]) <= LIMIT
    assert all(r["submitted"] for r in results.values()), f"one drain did all: {results}"


def check_exactly_once(
    state: dict,  # type: ignore[type-arg]
    ledger: Ledger,
    results: dict[str, dict],  # type: ignore[type-arg]
) -> None:
    """Every batch submitted once, by one process, accepted once; within the quota."""
    client = state["target"]["clients"]["demo"]
    with ledger.session() as session:
        sent = list(session.scalars(select(Batch)))
    submitted = [i for r in results.values() for i in r["submitted"]]
    assert sorted(submitted) == sorted(b.id for b in sent)  # each by one process, once
    assert all(b.state == COMPLETE for b in sent), [(b.id, b.state, b.message) for b in sent]
    accepted = sorted(b["batch_id"] for b in client["batches"])
    assert accepted == sorted(str(b.remote_batch_id) for b in sent)  # each accepted once
    assert client["rejected_batches"] == [], client["rejected_batches"]
    assert sum(client["quota"]["rows_by_day"].values()) == PROFILES <= QUOTA
    assert quota_used_24h(ledger, "target:demo", utcnow()) == PROFILES
    assert client["profiles"]["thirdPartyId"] == PROFILES
