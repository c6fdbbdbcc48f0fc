"""Concurrency: the nightly run and a backfill at once, and two drains at once, in real OS
processes against ONE ledger (a SQLite file, or a PostgreSQL database) and ONE sandbox.

Each process is ``concurrency_driver``; both wait on a barrier file so their work overlaps
(their merges into the same profile stores, their outbox builds, their drains).
Afterwards a final drain/poll pass runs here, then: the accounting invariant holds (every
profile at each account holds its latest source values, read back); the
sandbox's ``GET /_sandbox/state`` shows no ledger batch accepted twice for one attempt (every
accepted batch is the recorded remote id of exactly one ledger batch, and no content was
accepted more often than the ledger has attempts of it); no ledger batch id was submitted by
two processes; neither the ledger's nor the sandbox's daily quota was exceeded.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from connector import delivery, pipeline
from connector.ledger import QUEUED, Batch, Ledger, QuotaUse
from connector.sandbox.testing import running_sandbox
from connector.settings import Settings

from . import invariant
from .harness import build_outboxes, open_batches
from .world import POS, World, make_settings

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One ledger for every process of the test: a SQLite file, or a fresh PostgreSQL db."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        Ledger(url).upgrade()
        yield url
        return
    base = request.getfixturevalue("postgres_url")
    name = f"rel_conc_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = (
            make_url(base)
            .set(drivername="postgresql+psycopg2", database=name)
            .render_as_string(hide_password=False)
        )
        ledger = Ledger(url)
        ledger.upgrade()
        ledger.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_together(tmp: Path, roles: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Start one driver per role, release them together, wait; their result files."""
    procs: dict[str, subprocess.Popen[str]] = {}
    for role, config in roles.items():
        path = tmp / f"driver.{role}.json"
        path.write_text(json.dumps({"root": str(tmp), "role": role, **config}))
        procs[role] = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.concurrency_driver", str(path)],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    deadline = time.monotonic() + 60
    while not all((tmp / f"ready.{r}").exists() for r in roles):
        dead = [r for r, p in procs.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            for p in procs.values():
                p.kill()
            errs = {r: procs[r].communicate()[1][-2000:] for r in roles}
            raise AssertionError(f"drivers not ready: {dead}: {errs}")
        time.sleep(0.01)
    (tmp / "go").write_text("go")
    failed = {}
    for role, proc in procs.items():
        try:
            _out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
        if proc.returncode != 0:
            failed[role] = (proc.returncode, err[-3000:])
    assert not failed, f"driver(s) failed: {failed}"
    return {r: json.loads((tmp / f"result.{r}.json").read_text()) for r in roles}


def final_pass(settings: Settings, ledger: Ledger, *, rounds: int = 200) -> list[int]:
    submitted: list[int] = []
    for _ in range(rounds):
        now = dt.datetime.now(dt.UTC)
        for dest in ("target", "copernica"):
            submitted += delivery.drain(settings, ledger, destination=dest, now=now).submitted
        delivery.poll(settings, ledger, destination="target", now=now)
        if open_batches(ledger) == 0:
            break
        time.sleep(0.02)
    return submitted


def check_no_double_submit(
    sb: Any, settings: Settings, ledger: Ledger, submitted_by: dict[str, list[int]]
) -> dict[str, int]:
    """No ledger batch submitted twice for one attempt; quotas kept. Returns figures."""
    everything = [i for ids in submitted_by.values() for i in ids]
    twice = [i for i, n in collections.Counter(everything).items() if n > 1]
    assert not twice, f"ledger batches submitted more than once: {twice} ({submitted_by})"
    sb.wait_idle()
    state = httpx.get(f"{sb.url}/_sandbox/state", timeout=10).json()
    info = state["target"]["clients"].get(settings.target.client_code, {})
    accepted = info.get("batches", [])
    with ledger.session() as s:
        sent = list(
            s.scalars(
                select(Batch).where(Batch.destination == "target", Batch.submitted_at.is_not(None))
            )
        )
        quota = list(s.scalars(select(QuotaUse)))
    remote = collections.Counter(b.remote_batch_id for b in sent)
    assert all(n == 1 for n in remote.values()), f"remote id shared by two ledger batches {remote}"
    for a in accepted:
        assert remote.get(str(a["batch_id"])) == 1, (
            f"sandbox batch {a['batch_id']} (sha {a['sha256'][:12]}) is no ledger batch's "
            "recorded submission: submitted twice or never recorded"
        )
    attempts = collections.Counter(b.sha256 for b in sent)
    for sha, n in collections.Counter(a["sha256"] for a in accepted).items():
        assert n <= attempts[sha], f"content {sha[:12]} accepted {n}x, {attempts[sha]} attempt(s)"
    limit = state["target"]["limits"]["daily_quota"]
    for day, rows in info.get("quota", {}).get("rows_by_day", {}).items():
        assert rows <= limit, f"sandbox quota exceeded on {day}: {rows} > {limit}"
    for q in quota:
        if q.destination_key.startswith("target:"):
            assert q.rows <= settings.daily_quota, f"ledger quota {q.day}: {q.rows}"
    return {
        "sandbox_accepted_batches": len(accepted),
        "ledger_target_batches_sent": len(sent),
        "target_rows_by_day": sum(info.get("quota", {}).get("rows_by_day", {}).values()),
    }


def test_nightly_and_backfill_at_once(tmp_path: Path, ledger_url: str, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    world = World(tmp_path / "world", seed=5, customers=CUSTOMERS)
    days = [world.night(n, crm_changes=12, pos_rows=10) for n in range(4)]
    quota = 5_000
    started = time.monotonic()
    with running_sandbox(processing_delay_s=0.05, daily_quota=quota, seed=2) as sb:
        common = {
            "world": str(world.root),
            "url": sb.url,
            "ledger_url": ledger_url,
            "seed": 5,
            "customers": CUSTOMERS,
            "settings": {"daily_quota": quota, "target": {"max_batch_rows": 8}},
        }
        results = run_together(
            tmp_path,
            {
                "nightly": {**common, "days": days[3:]},
                "backfill": {**common, "days": days[:3]},
            },
        )
        settings = make_settings(
            tmp_path,
            sb.url,
            mappings_dir=world.root / "mappings",
            state_db_url=ledger_url,
            daily_quota=quota,
            target={"max_batch_rows": 8},
        )
        ledger = Ledger(settings.ledger_url)
        try:
            final = final_pass(settings, ledger)
            submitted = {r: res["submitted"] for r, res in results.items()} | {"final": final}
            figures = check_no_double_submit(sb, settings, ledger, submitted)
            report = invariant.check(
                ledger, settings, sandbox=sb, expected=world.expected, settled=True
            )
        finally:
            ledger.dispose()
    assert report.ok, f"nightly + backfill at once ({ledger_url.split(':')[0]}): {report}"
    overlap = min(r["started"] + r["elapsed_s"] for r in results.values()) - max(
        r["started"] for r in results.values()
    )
    assert overlap > 0, f"the processes did not overlap: {results}"
    figures_recorder(
        f"concurrency_nightly_backfill_{ledger_url.split(':')[0].split('+')[0]}",
        {
            "scenario": "nightly D and backfill D-3..D-1 in two processes, one ledger",
            "processes": 2,
            "source_rows": world.rows_written,
            "rows": report.rows,
            "delivered": report.delivered,
            "superseded": report.superseded,
            "profiles": report.profiles,
            "profile_fates": report.profile_fates,
            "batches": report.batches,
            "built": {r: res.get("built") for r, res in results.items()},
            "submitted_by": {r: len(v) for r, v in submitted.items()},
            "overlap_s": round(overlap, 2),
            "invariant_held": report.ok,
            "wall_s": round(time.monotonic() - started, 1),
            **figures,
        },
    )


def test_two_runs_of_one_partition_at_once(tmp_path: Path, ledger_url: str) -> None:
    """Two syncs of the same days at once (an operator's retry while the schedule runs):
    each stages in its own folder, so neither reads the other's half-written files; both
    finish without an error, and every profile lands with its latest values."""
    world = World(tmp_path / "world", seed=7, customers=CUSTOMERS)
    days = [world.night(n, crm_changes=12, pos_rows=10) for n in range(2)]
    with running_sandbox(processing_delay_s=0.05, seed=3) as sb:
        common = {
            "world": str(world.root),
            "url": sb.url,
            "ledger_url": ledger_url,
            "seed": 7,
            "customers": CUSTOMERS,
            "days": days,
            "settings": {"target": {"max_batch_rows": 8}},
        }
        results = run_together(tmp_path, {"first": common, "second": common})
        settings = make_settings(
            tmp_path,
            sb.url,
            mappings_dir=world.root / "mappings",
            state_db_url=ledger_url,
            target={"max_batch_rows": 8},
        )
        ledger = Ledger(settings.ledger_url)
        try:
            final = final_pass(settings, ledger)
            submitted = {r: res["submitted"] for r, res in results.items()} | {"final": final}
            check_no_double_submit(sb, settings, ledger, submitted)
            report = invariant.check(
                ledger, settings, sandbox=sb, expected=world.expected, settled=True
            )
        finally:
            ledger.dispose()
    assert report.ok, f"two runs of one partition ({ledger_url.split(':')[0]}): {report}"
    assert set(report.profile_fates) == {"landed"}, str(report)
    overlap = min(r["started"] + r["prepared_s"] for r in results.values()) - max(
        r["started"] for r in results.values()
    )
    assert overlap > 0, f"the processes did not prepare at the same time: {results}"


def test_two_drains_at_once_in_processes(tmp_path: Path, ledger_url: str, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    """Many small queued batches, a quota that lets only some through: two draining processes
    never submit one batch twice and together never pass the quota."""
    world = World(tmp_path / "world", seed=6, customers=CUSTOMERS)
    day = world.night(0, pos_rows=12)
    # target: one row per profile (30: CRM and POS values of a customer in one row), batches
    # of 4 rows; the quota lets 5 of the 8 batches through
    quota = 20
    started = time.monotonic()
    with running_sandbox(processing_delay_s=0.05, daily_quota=quota, seed=3) as sb:
        settings = make_settings(
            tmp_path,
            sb.url,
            mappings_dir=world.root / "mappings",
            state_db_url=ledger_url,
            daily_quota=quota,
            target={"max_batch_rows": 4},
        )
        ledger = Ledger(settings.ledger_url)
        try:
            for mapping in world.mappings:
                pipeline.prepare(mapping, day, settings, ledger)
            build_outboxes(settings, ledger, world.mappings)
            common = {
                "world": str(world.root),
                "url": sb.url,
                "ledger_url": ledger_url,
                "seed": 6,
                "customers": CUSTOMERS,
                "days": [],
                "quiet": True,
                "settings": {"daily_quota": quota, "target": {"max_batch_rows": 4}},
            }
            results = run_together(tmp_path, {"drain1": common, "drain2": common})
            submitted = {r: res["submitted"] for r, res in results.items()}
            figures = check_no_double_submit(sb, settings, ledger, submitted)
            report = invariant.check(ledger, settings, sandbox=sb, expected=world.expected)
            with ledger.session() as s:
                waiting = s.scalars(
                    select(Batch).where(Batch.destination == "target", Batch.state == QUEUED)
                ).all()
        finally:
            ledger.dispose()
    assert report.ok, f"two drains at once ({ledger_url.split(':')[0]}): {report}"
    rows = sum(res["rows"] for res in results.values())
    assert rows <= quota
    assert figures["target_rows_by_day"] <= quota
    assert all(res["submitted"] for res in results.values()) or rows > 0
    # the quota did bind: what did not fit waits, queued, its profiles in flight
    assert waiting and report.profile_fates.get("in_flight", 0) == sum(
        b.row_count for b in waiting
    ), (report, waiting)
    figures_recorder(
        f"concurrency_two_drains_{ledger_url.split(':')[0].split('+')[0]}",
        {
            "scenario": "two drain processes at once, quota binding",
            "processes": 2,
            "rows": report.rows,
            "delivered": report.delivered,
            "pending": report.pending,
            "profile_fates": report.profile_fates,
            "quota": quota,
            "rows_submitted": rows,
            "submitted_by": {r: len(v) for r, v in submitted.items()},
            "invariant_held": report.ok,
            "wall_s": round(time.monotonic() - started, 1),
            **figures,
        },
    )


def test_backfill_after_the_nightly_run_does_not_overwrite_newer_values(tmp_path: Path) -> None:
    """Deterministic form of what the concurrent run found: POS day D prepared and its outbox
    built, then a backfill of D-3..D-1 prepared and built, then one drain. The profile store
    decides by day, not by the order days ran: a backfill day's values of an identity D also
    holds lose to D's (counted superseded, never queued), the others are merged and sent, and
    the destination ends with every profile's latest source values."""
    from .harness import FakeClock, Figures, deliver, make_clients

    world = World(tmp_path / "world", seed=5, customers=CUSTOMERS)
    days = [world.night(n, crm_changes=12, pos_rows=10) for n in range(4)]
    newest = set(world.pos_by_day[days[3]])
    backfilled = set().union(*(world.pos_by_day[d] for d in days[:3]))
    assert newest & backfilled and backfilled - newest, "the scenario tests nothing"
    clock = FakeClock()
    with running_sandbox(processing_delay_s=0.0, seed=2, clock=clock) as sb:
        settings = make_settings(tmp_path, sb.url, mappings_dir=world.root / "mappings")
        ledger = Ledger(settings.ledger_url)
        ledger.create_all()
        clients = make_clients(settings, clock, ledger)
        figures = Figures()
        try:
            pos = world.mapping(POS)  # one file per day: every day can be backfilled
            pipeline.prepare(pos, days[3], settings, ledger)
            (nightly,) = build_outboxes(settings, ledger, [pos])
            assert nightly.rows == len(newest), nightly.summary()
            for day in days[:3]:  # all queued before any drain
                merged = pipeline.prepare(pos, day, settings, ledger)[-1]
                ids = set(world.pos_by_day[day])
                assert merged.counts["superseded"] == len(ids & newest), (day, merged.counts)
                assert merged.counts["rows_out"] == len(ids - newest), (day, merged.counts)
            (backfill,) = build_outboxes(settings, ledger, [pos])
            # only the identities D does not hold changed: D's rows are not written again
            assert backfill.candidates == backfill.rows == len(backfilled - newest), (
                backfill.summary()
            )
            assert deliver(settings, ledger, clients, clock, figures) == 0
            expected = {k: v for k, v in world.expected.items() if k[0] == POS}
            report = invariant.check(ledger, settings, sandbox=sb, expected=expected, settled=True)
        finally:
            clients.close()
            ledger.dispose()
    assert report.ok, str(report)
    assert report.profile_fates == {"landed": len(newest | backfilled)}, str(report)
