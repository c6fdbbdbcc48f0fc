"""What the POS sensor launches, tick by tick: only new or changed files are hashed (counted,
never timed), the cursor stays bounded, and an earlier release's cursor still works.

Real files, a real SQLite ledger, and the extract stage's own reader to ingest files (it
records each file's checksum with its size and ETag as listed)."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connector.ledger import Ledger
from connector.mapping import SourceMapping, parse_mapping
from connector.partitions import day_window
from connector.settings import Settings, load_settings
from connector.sources import FileRegistry, iter_source_chunks
from connector.sources.arrival_cursor import ArrivalCursor
from connector.sources.arrivals import Arrivals, new_source_files
from connector.sources.registry import file_sha256
from connector.storage import local_etag
from tests.ledger.conftest import fresh_postgres_url, ledger_url, sqlite_ledger_url  # noqa: F401

UTC = ZoneInfo("UTC")
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)  # partition days: 2026-11-01 .. 2026-11-29


@dataclass
class World:
    exports: Path
    mapping: SourceMapping
    settings: Settings
    ledger: Ledger

    def write(self, day: str, rows: int = 1) -> str:
        path = self.exports / f"pos_{day}.csv"
        path.write_text("id,v\n" + "".join(f"{day}-{i},x\n" for i in range(rows)))
        return str(path)

    def ingest(self, day: str) -> None:
        """The extract stage's reading of the day (it records what it read)."""
        registry = FileRegistry(self.ledger, self.mapping.name)
        chunks = iter_source_chunks(
            self.mapping, day, day_window(day, UTC), chunk_rows=100, registry=registry
        )
        assert sum(c.table.num_rows for c in chunks) > 0

    def tick(self, cursor: ArrivalCursor, now: dt.datetime = NOW) -> Arrivals:
        # through the cursor's JSON, as the sensor keeps it
        again = ArrivalCursor.parse(cursor.to_json())
        return new_source_files([self.mapping], self.settings, again, now, self.ledger)


def _world(tmp_path: Path, ledger: Ledger) -> World:
    exports = tmp_path / "exports"
    exports.mkdir()
    mapping = parse_mapping(
        f"""
name: pos
source: {{kind: csv, path: "{exports}/*.csv"}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{v: v}}
"""
    )
    settings = load_settings(
        state_dir=tmp_path / "state", timezone="UTC", partition_start=dt.date(2026, 11, 1)
    )
    return World(exports, mapping, settings, ledger)


@pytest.fixture
def world(tmp_path: Path, ledger_url: str):  # type: ignore[no-untyped-def]  # noqa: F811
    """A mapping of a folder of exports over a new ledger (SQLite, then PostgreSQL)."""
    ledger = Ledger(ledger_url)
    ledger.create_all()
    yield _world(tmp_path, ledger)
    ledger.dispose()


def _touch(path: str) -> None:
    """A new mtime, a second later (whatever the file system's resolution), same bytes."""
    info = os.stat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


def _days(found: Arrivals) -> list[str]:
    return sorted(day for _, day in found.runs)


def test_only_new_or_changed_files_are_hashed(world: World) -> None:
    ingested = [world.write(f"2026-11-0{d}") for d in (1, 2, 3)]
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        world.ingest(day)

    # an empty cursor on a state that has run: the registry places every file unread
    first = world.tick(ArrivalCursor())
    assert (first.hashed, first.runs, first.listed) == ([], {}, 3)

    new = world.write("2026-11-04")
    arrived = world.tick(first.cursor)
    assert arrived.hashed == [new]
    assert list(arrived.runs) == [("pos", "2026-11-04")]
    assert arrived.runs["pos", "2026-11-04"] == [f"pos_2026-11-04.csv@{file_sha256(new)[0][:16]}"]

    # launched, not ingested yet: neither hashed nor launched again
    waiting = world.tick(arrived.cursor)
    assert (waiting.hashed, waiting.runs) == ([], {})

    # touched, same bytes: hashed once, launches nothing, and is not hashed again
    _touch(ingested[0])
    touched = world.tick(waiting.cursor)
    assert (touched.hashed, touched.runs) == ([ingested[0]], {})
    assert (world.tick(touched.cursor).hashed) == []
    _touch(new)  # the waiting file touched: its bytes were launched already
    touched_waiting = world.tick(touched.cursor)
    assert (touched_waiting.hashed, touched_waiting.runs) == ([new], {})

    # rewritten (other bytes): hashed and launched
    world.write("2026-11-02", rows=2)
    changed = world.tick(touched_waiting.cursor)
    assert (changed.hashed, _days(changed)) == ([ingested[1]], ["2026-11-02"])

    # once both are ingested the cursor forgets them, and nothing is hashed
    world.ingest("2026-11-02")
    world.ingest("2026-11-04")
    settled = world.tick(changed.cursor)
    assert (settled.hashed, settled.runs) == ([], {})
    assert settled.cursor.mappings["pos"].waiting == {}


def test_the_cursor_stays_bounded_over_a_growing_folder(world: World) -> None:
    """Bound (``arrival_cursor``): per csv mapping at most 120 bytes plus its name, per file
    launched and not yet ingested at most 100 bytes plus its path; nothing per file ingested.
    Here every tick finds one new file, which is ingested before the next tick: the cursor
    holds one file, always."""
    cursor = ArrivalCursor()
    sizes = []
    for n in range(1, 26):
        day = f"2026-11-{n:02d}"
        new = world.write(day)
        found = world.tick(cursor)
        assert found.hashed == [new] and _days(found) == [day]
        assert list(found.cursor.mappings["pos"].waiting) == [new]
        sizes.append(len(found.cursor.to_json()))
        world.ingest(day)
        cursor = found.cursor
    assert len(FileRegistry(world.ledger, "pos").recorded()) == 25
    # the same size after 25 files as after one (the paths are of one length)
    assert set(sizes) == {sizes[0]}
    assert sizes[0] <= 120 + len("pos") + 100 + len(new)
    idle = world.tick(cursor)
    assert idle.hashed == [] and idle.cursor.mappings["pos"].waiting == {}
    assert len(idle.cursor.to_json()) <= 120 + len("pos")


def test_files_of_days_that_are_not_partitions_are_neither_hashed_nor_kept(world: World) -> None:
    today = world.write("2026-11-30")  # not over yet
    world.write("2026-10-31")  # before partition_start
    found = world.tick(ArrivalCursor())
    assert (found.hashed, found.runs) == ([], {})
    assert sorted(day for _, day in found.not_yet) == ["2026-10-31", "2026-11-30"]
    assert found.cursor.mappings["pos"].waiting == {}
    next_day = world.tick(found.cursor, now=NOW + dt.timedelta(days=1))
    assert (next_day.hashed, _days(next_day)) == ([today], ["2026-11-30"])


def test_a_cursor_of_the_earlier_release_and_its_registry_are_taken_over(
    tmp_path: Path,
    ledger_url: str,  # noqa: F811
) -> None:
    """The earlier sensor kept ``{"<mapping>:<path>": sha256}`` for every file it saw, and the
    registry kept no ETag for a local file. The first tick hashes each file once, launches
    only a file that changed since, and keeps only the files no run has ingested; the next
    hashes nothing."""
    ledger = Ledger(ledger_url)
    ledger.create_all()
    world = _world(tmp_path, ledger)
    paths = [world.write(f"2026-11-0{d}") for d in (1, 2, 3, 4)]
    shas = [file_sha256(p) for p in paths]
    registry = FileRegistry(ledger, "pos")
    for path, (sha, size), day in zip(paths[:2], shas[:2], ("01", "02"), strict=False):
        registry.record(path, sha, size, f"2026-11-{day}", 1)  # as the earlier release did
    # day 3 launched and not ingested; day 4 launched, then rewritten
    seen = {f"pos:{p}": sha for p, (sha, _) in zip(paths, shas, strict=True)}
    world.write("2026-11-04", rows=3)
    old = ArrivalCursor.parse(json.dumps(seen, sort_keys=True))

    first = world.tick(old)
    assert sorted(first.hashed) == sorted(paths)
    assert _days(first) == ["2026-11-04"]
    assert sorted(first.cursor.mappings["pos"].waiting) == sorted(paths[2:])
    recorded = registry.recorded()
    assert all(r.etag == local_etag(os.stat(p)) for p in paths[:2] for r in recorded[p])

    again = world.tick(first.cursor)
    assert (again.hashed, again.runs) == ([], {})
    ledger.dispose()


@pytest.mark.parametrize(
    ("cursor", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"version": 2}', "not a version 2 cursor"),
        ('{"version": 2, "mappings": {"pos": {"waiting": 1}}}', "mapping 'pos'"),
        ('{"pos_no_path": "abc"}', "is not '<mapping>:<path>'"),
    ],
)
def test_an_unreadable_cursor_is_a_clear_error(cursor: str, says: str) -> None:
    with pytest.raises(ValueError, match="pos_files cursor") as error:
        ArrivalCursor.parse(cursor)
    assert says in str(error.value)
