"""Two `connector sync` processes of the same day at once on a fresh install (the schedule
and an operator's retry): both finish with exit code 0, each run stages in its own folder,
Dagster's instance (by the syncs' recorders) and the ledger are created once, and every
profile lands."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select

from connector.ledger import Delivered, Ledger
from tests.recorders import wait_for_recorders

DAY = "2026-11-20"
PROCESSES = 2


def _summary_rows(output: str) -> dict[str, list[int]]:
    """The mapping rows of `connector sync`'s summary table: read, rejected, merged,
    unchanged, outdated, changed."""
    rows = {}
    table = output.split("┃ mapping", 1)[-1].split("└", 1)[0]  # the first table only
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line.strip().strip("│|"))]
        if len(cells) == 7 and all(c.replace(",", "").isdigit() for c in cells[1:]):
            rows[cells[0]] = [int(c.replace(",", "")) for c in cells[1:]]
    return rows


def _target_profiles(url: str, client: str) -> int:
    state = httpx.get(f"{url}/_sandbox/state", timeout=10).json()
    return int(state["target"]["clients"][client]["profiles"]["thirdPartyId"])


def test_two_syncs_of_one_day_at_once(workdir: Path, sandbox) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ)
    env.update(
        CONNECTOR_STATE_DIR=str(workdir / "state"),
        CONNECTOR_MAPPINGS_DIR=str(workdir / "mappings"),
        CONNECTOR_TARGET__BASE_URL=sandbox.url,
        CONNECTOR_TARGET__CLIENT_CODE="atonce",
        CONNECTOR_TARGET__POLL_INTERVAL_S="0.2",
        CONNECTOR_COPERNICA__BASE_URL=f"{sandbox.url}/v3",
        CONNECTOR_COPERNICA__DATABASE="atonce",
        CONNECTOR_OFF_PEAK="00:00-24:00",
        CONNECTOR_PARTITION_START="2026-11-01",
        DAGSTER_HOME=str(workdir / "dagster_home"),
    )
    procs = [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "connector"), "sync", "--partition", DAY],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, "\n\n".join(o[-3000:] for o in outputs)
    for output in outputs:  # each run's summary adds up: read = rejected + ... + changed
        rows = _summary_rows(output)
        assert set(rows) == {"crm_copernica", "crm_customers", "pos_purchases"}, output[-4000:]
        for name, (read, *parts) in rows.items():
            assert read == sum(parts) > 0, (name, read, parts)
    # each sync's runs are recorded by its own recorder process, in the background: two of
    # them open the new instance at once
    wait_for_recorders(workdir / "state")
    runs = sqlite3.connect(workdir / "dagster_home" / "history" / "runs.db")
    try:
        assert runs.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    finally:
        runs.close()
    stage = workdir / "state" / "stage" / "pos_purchases" / DAY
    assert len([p for p in stage.iterdir() if p.is_dir()]) >= PROCESSES  # a folder per run
    ledger = Ledger(f"sqlite:///{workdir / 'state' / 'ledger.db'}")
    try:
        with ledger.session() as s:
            delivered = set(
                s.scalars(
                    select(Delivered.identity).where(Delivered.destination_key == "target:atonce")
                )
            )
    finally:
        ledger.dispose()
    assert delivered and _target_profiles(sandbox.url, "atonce") == len(delivered)


def _open_instance(home: str, start: object) -> None:
    os.environ["DAGSTER_HOME"] = home
    from connector.defs.runner import instance_for

    start.wait()  # type: ignore[attr-defined]
    instance_for(Path(home)).dispose()


def test_processes_opening_a_new_dagster_instance_at_once(tmp_path: Path) -> None:
    """The race under the test above, without the syncs' start-up time around it: four
    processes open one new DAGSTER_HOME at the same moment."""
    import multiprocessing as mp

    home = tmp_path / "dagster_home"
    home.mkdir()
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_open_instance, args=(str(home), start)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    runs = sqlite3.connect(home / "history" / "runs.db")
    try:
        assert runs.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    finally:
        runs.close()
