"""Disk and database faults while the outbox writes batches: a clear error, no partial batch
queued.

Each scenario runs in its own process (``python -m tests.reliability.test_disk_db_faults NAME
DIR``), as a run does in production: in the pytest process a ``duckdb.connect`` in the batch
writer was seen to block after the extract stage's worker threads (see the report).

Real faults where they can be made here: a read-only tmpfs as the outbox, a tiny tmpfs that
fills up mid-file (ENOSPC), a SQLite ledger locked by another connection, a PostgreSQL ledger
that does not answer. The failed build leaves the stores' ``built_version`` where it was, so
after the fault is gone a rerun of the build queues every profile exactly once: what was
registered before the fault stays queued and is not written again (the invariant holds, each
of the 300 profiles in flight in one row).
"""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from connector import ledger as ledger_mod
from connector import pipeline
from connector.ledger import Batch, Ledger
from connector.outbox import build as outbox_build
from connector.outbox import writer as batches_mod

from . import invariant
from .world import CRM_T, World, make_settings


@contextmanager
def tmpfs(path: Path, size: str, *, readonly: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def setup(tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    world = World(tmp_path / "world", seed=4, customers=300)
    day = world.night(0)
    settings = make_settings(
        tmp_path,
        "http://127.0.0.1:9",
        mappings_dir=world.root / "mappings",
        outbox_dir=tmp_path / "outbox",
        chunk_rows=1000,
        **overrides,
    )
    ledger = Ledger(settings.ledger_url, busy_timeout_s=0.5)
    ledger.create_all()
    mapping = world.mapping(CRM_T)
    pipeline.prepare(mapping, day, settings, ledger)
    return world, day, settings, ledger, mapping


def build(settings, ledger):  # type: ignore[no-untyped-def]
    """The Target account's outbox (CRM_T's store is its only one)."""
    return outbox_build.build(settings, ledger, "target", mappings=[CRM_T])


def all_queued_once(ledger: Ledger, settings) -> None:  # type: ignore[no-untyped-def]
    """Each of the 300 profiles in exactly one queued row, with its current values."""
    report = invariant.check(ledger, settings)
    assert report.ok and report.pending == report.rows == 300, report
    assert report.profile_fates == {"in_flight": 300}, report


def failure(call, kind):  # type: ignore[no-untyped-def]
    """(errno, message) of the ``kind`` error ``call`` raises. Only text is kept: the failed
    stage's frames hold a DuckDB result stream, and while that lives the next
    ``duckdb.connect`` in the process blocks (see the report)."""
    try:
        call()
    except kind as exc:
        return getattr(exc, "errno", None), str(exc)
    raise AssertionError(f"no {kind.__name__} raised")


def queued(ledger: Ledger) -> list[Batch]:
    with ledger.session() as s:
        return list(s.scalars(select(Batch)))


def leftovers(outbox: Path) -> list[str]:
    return sorted(p.name for p in outbox.rglob("*") if p.is_file())


def registered_files_are_whole(ledger: Ledger) -> None:
    for b in queued(ledger):
        data = Path(b.path).read_bytes()
        assert len(data) == b.byte_size and data.count(b"\n") == b.row_count, b.batch_key


def outbox_not_writable(tmp_path: Path) -> None:
    _world, _day, settings, ledger, _mapping = setup(tmp_path)
    with tmpfs(tmp_path / "outbox", "1m", readonly=True):
        err = failure(lambda: build(settings, ledger), OSError)
        assert err[0] in (errno.EROFS, errno.EACCES), err
        assert str(tmp_path / "outbox") in err[1], "the error does not say where"
        assert queued(ledger) == []
    build(settings, ledger)  # the fault gone: a rerun queues all
    all_queued_once(ledger, settings)


def disk_full_while_writing_a_batch(tmp_path: Path) -> None:
    _world, _day, settings, ledger, _mapping = setup(tmp_path)
    with tmpfs(tmp_path / "outbox", "24k") as outbox:
        err = failure(lambda: build(settings, ledger), OSError)
        assert err[0] == errno.ENOSPC, err
        registered_files_are_whole(ledger)  # what was registered is complete
        names = {b.batch_key for b in queued(ledger)}
        assert names, "nothing was registered before the disk filled up: the test is blind"
        stray = [n for n in leftovers(outbox) if n.split(".")[0] not in names]
        assert stray == [], f"partial or unregistered files left: {stray}"
        # the fault gone (space freed, the queued files still there): a rerun queues the rest
        grow = ["mount", "-o", "remount,size=64m", str(outbox)]
        subprocess.run(grow, check=True, capture_output=True)
        build(settings, ledger)
        registered_files_are_whole(ledger)
        all_queued_once(ledger, settings)


def ledger_locked_while_registering(tmp_path: Path) -> None:
    _world, _day, settings, ledger, _mapping = setup(tmp_path)
    db = settings.ledger_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(db, isolation_level=None)
    real = ledger_mod.register_batch
    calls = {"n": 0}

    def register_while_locked(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # another process takes the write lock from the 2nd batch on
            locker.execute("BEGIN EXCLUSIVE")
        return real(*args, **kwargs)

    ledger_mod.register_batch = register_while_locked  # type: ignore[assignment]
    err = failure(lambda: build(settings, ledger), OperationalError)
    assert "locked" in err[1], err
    locker.execute("ROLLBACK")
    locker.close()
    got = queued(ledger)
    assert len(got) == 1, "only the batch registered before the lock may be queued"
    registered_files_are_whole(ledger)
    assert leftovers(settings.outbox.local_path) == sorted(
        Path(p).name for b in got for p in (b.path, b.manifest_path)
    ), "the file whose registration failed was left behind"
    ledger_mod.register_batch = real  # type: ignore[assignment]
    build(settings, ledger)
    all_queued_once(ledger, settings)


def ledger_unreachable(tmp_path: Path) -> None:
    _world, _day, settings, _ledger, _mapping = setup(tmp_path)
    gone = Ledger("postgresql+psycopg2://connector@127.0.0.1:1/ledger")
    with pytest.raises(OperationalError, match=r"127\.0\.0\.1") as info:
        build(settings, gone)
    assert "password" not in str(info.value).lower()
    assert leftovers(settings.outbox.local_path) == [], "files written for a ledger never reached"
    gone.dispose()
    assert batches_mod  # the writer under test


SCENARIOS = {
    f.__name__: f
    for f in (
        outbox_not_writable,
        disk_full_while_writing_a_batch,
        ledger_locked_while_registering,
        ledger_unreachable,
    )
}
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_disk_and_database_faults(name: str, tmp_path: Path, figures_recorder) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.test_disk_db_faults", name, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if proc.returncode == 5:
        pytest.skip(proc.stdout.strip() or "skipped")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    figures_recorder(f"fault_{name}", {"scenario": name, "passed": True})


def _main(name: str, tmp: str) -> int:
    try:
        SCENARIOS[name](Path(tmp))
    except pytest.skip.Exception as exc:
        print(exc.msg)
        return 5
    print(json.dumps({"scenario": name, "ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
