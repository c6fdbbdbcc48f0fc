"""`connector sync` with its output in a pipe: timestamped progress lines as the stages go
(extract, outbox, submit, poll, in that order), each whole on one line, and a small sync
against the sandbox ends in seconds with the default poll interval."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from connector.sample_data import ensure_sample_db
from connector.sandbox.testing import running_sandbox

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-21"
STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def sync(workdir: Path, sandbox_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        CONNECTOR_STATE_DIR=str(workdir / "state"),
        CONNECTOR_MAPPINGS_DIR=str(workdir / "mappings"),
        CONNECTOR_TARGET__BASE_URL=sandbox_url,
        CONNECTOR_COPERNICA__BASE_URL=f"{sandbox_url}/v3",
        CONNECTOR_OFF_PEAK="00:00-24:00",
        CONNECTOR_PARTITION_START="2026-11-01",
        DAGSTER_HOME=str(workdir / "dagster_home"),
        COLUMNS="200",  # not what decides the width of a line: nothing is wrapped
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "connector"), "sync", "--partition", DAY],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def first(lines: list[str], pattern: str) -> int:
    found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert found, f"no line matches {pattern!r}:\n" + "\n".join(lines)
    return found[0]


def test_a_piped_sync_prints_progress_lines_in_order_unwrapped(tmp_path: Path) -> None:
    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    shutil.copytree(ROOT / "sample_exports", tmp_path / "sample_exports")
    (tmp_path / "mappings").mkdir()
    shutil.copy(ROOT / "mappings" / "crm_customers.yaml", tmp_path / "mappings")
    (tmp_path / "dagster_home").mkdir()
    # the sandbox completes a batch a second and a half after accepting it: the first poll
    # finds it pending, and the poll says when it asks again
    with running_sandbox(processing_delay_s=1.5) as sb:
        done = sync(tmp_path, sb.url)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    lines = done.stdout.splitlines()
    progress = [line for line in lines if STAMP.match(line)]

    extract = first(progress, rf"^\S+ extract crm_customers {DAY}: started$")
    extracted = first(progress, rf"^\S+ extract crm_customers {DAY}: done in .*, 50 rows")
    outbox = first(progress, r"^\S+ outbox target:demo: done in .*50 of 50 rows.*, 1 batch;")
    submit = first(progress, r"^\S+ submit target:demo: done in .*50 of 50 rows.*, 1 batch;")
    waits = first(progress, r"^\S+ poll target:demo: 0 of 1 batches final; next poll at \d\d:")
    polled = first(progress, r"^\S+ poll target:demo: done in .*1 of 1 batches final;")
    assert extract < extracted < outbox < submit < waits < polled

    # the poll's end says everything on one line, longer than a terminal's 120 columns
    assert progress[polled].endswith("landing rate 100.00% (20/20)")
    assert len(progress[polled]) > 120
    # nothing between the first and the last progress line is a continuation of one
    start, end = lines.index(progress[0]), lines.index(progress[-1])
    assert all(STAMP.match(line) for line in lines[start : end + 1])
    # with the default poll interval (30 s, the longest wait) the first wait is a second
    said, due = re.findall(r"\d\d:\d\d:\d\d", progress[waits])
    assert seconds(due) - seconds(said) in (1, 2, 1 - 86_400, 2 - 86_400)  # to the second


def seconds(clock: str) -> int:
    hours, minutes, secs = (int(part) for part in clock.split(":"))
    return hours * 3600 + minutes * 60 + secs
