"""POS exports in an object store (moto's S3 on loopback): a glob over a bucket's keys, objects
read as streams (nothing copied to the local disk), the file registry keyed on the ETag and
size with the checksum, the POS sensor's listing by ETag."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from connector.columns import SOURCE_REF
from connector.ledger import IngestedFile, Ledger
from connector.mapping import parse_mapping
from connector.mapping.model import SourceMapping
from connector.partitions import day_window
from connector.settings import Settings
from connector.sources import FileRegistry, iter_source_chunks, probe
from connector.sources.arrival_cursor import ArrivalCursor
from connector.sources.arrivals import new_source_files
from connector.sources.object_glob import ObjectGlob
from connector.sources.registry import ChecksumWhileReading, file_sha256
from connector.sources.source_files import list_files
from connector.storage import Location, delete
from tests.conftest import S3Server

TZ = ZoneInfo("UTC")
DAY = "2026-11-19"
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)  # every export's day is over


@pytest.fixture
def exports(s3_env: S3Server) -> Location:
    """An empty prefix in the test bucket: the POS exports of one test."""
    return Location.parse(s3_env.url(f"pos-{uuid.uuid4().hex[:8]}"))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.upgrade()  # the migrations, the etag column's included
    yield led
    led.dispose()


def _put(location: Location, key: str, data: bytes, folder: Path) -> str:
    """``data`` uploaded as ``key`` (written to ``folder`` first, removed once uploaded)."""
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / f"upload-{uuid.uuid4().hex[:8]}"
    local.write_bytes(data)
    return location.put_file(local, key, move=True)


def _mapping(pattern: str, extra: str = "") -> SourceMapping:
    return parse_mapping(
        f"""
name: pos
source: {{kind: csv, path: "{pattern}"{extra}}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{v: v}}
"""
    )


def _ids(
    mapping: SourceMapping, day: str, registry: FileRegistry | None, window: str = ""
) -> list[str]:
    chunks = iter_source_chunks(
        mapping, day, day_window(window or day, TZ), chunk_rows=10, registry=registry
    )
    return [i for c in chunks for i in c.table.column("id").to_pylist()]


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("s3://b/pos/pos_*.csv", "s3://b/pos/pos_1.csv", True),
        ("s3://b/pos/pos_*.csv", "s3://b/pos/sub/pos_1.csv", False),  # * stays in its segment
        ("s3://b/pos/**/pos_*.csv", "s3://b/pos/pos_1.csv", True),  # ** spans no folder too
        ("s3://b/pos/**/pos_*.csv", "s3://b/pos/a/b/pos_1.csv", True),
        ("s3://b/pos/pos_[0-9]?.csv", "s3://b/pos/pos_1a.csv", True),
        ("s3://b/pos/pos_[!0-9]*.csv", "s3://b/pos/pos_1a.csv", False),
        ("s3://b/pos/pos_1.csv", "s3://b/pos/pos_1.csv", True),
        ("s3://b/pos/pos_1.csv", "s3://b/pos/pos_1.csvx", False),
        ("s3://b/pos/p.s_*.csv", "s3://b/pos/pxs_1.csv", False),  # . is a dot
    ],
)
def test_an_object_glob_means_what_a_folder_glob_means(
    pattern: str, key: str, matches: bool
) -> None:
    assert ObjectGlob(pattern).matches(key) is matches
    assert ObjectGlob(pattern).prefix == "s3://b/pos/"  # what is listed: the folder


def test_a_bucket_glob_lists_the_csv_exports_it_names(exports: Location, tmp_path: Path) -> None:
    for key in ("pos_2026-11-19.csv", "pos_2026-11-20.csv.gz", "pos_x.txt", "old/pos_1.csv"):
        _put(exports, key, b"id,v\n1,a\n", tmp_path)
    found = list_files(f"{exports}/pos_*")
    assert [f.name for f in found] == ["pos_2026-11-19.csv", "pos_2026-11-20.csv.gz"]
    assert all(f.etag and f.size == 9 and f.is_object for f in found)
    assert [f.name for f in list_files(f"{exports}/**/*.csv")] == [
        "pos_1.csv",
        "pos_2026-11-19.csv",
    ]


def test_objects_are_read_streamed_with_their_url_in_refs_and_gzip(
    exports: Location, tmp_path: Path
) -> None:
    plain = _put(exports, "pos_2026-11-19.csv", b'id,v\r\n1,"a\r\nb"\r\n2,x\r\n', tmp_path)
    _put(exports, "pos_20261120.csv.gz", gzip.compress(b"id,v\n3,c\n"), tmp_path)
    mapping = _mapping(f"{exports}/pos_*")
    chunks = list(
        iter_source_chunks(mapping, DAY, day_window(DAY, TZ), chunk_rows=10, registry=None)
    )
    assert [c.table.column("v").to_pylist() for c in chunks] == [["a\r\nb", "x"]]
    assert chunks[0].table.column(SOURCE_REF).to_pylist() == [f"{plain}:2", f"{plain}:4"]
    assert _ids(mapping, "2026-11-20", None) == ["3"]
    # read as streams: nothing of them was written to this machine's disk
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_a_vanished_object_is_a_reject_naming_it(exports: Location, tmp_path: Path) -> None:
    from connector.sources.csv import read_csv_file

    url = _put(exports, "pos_2026-11-19.csv", b"id,v\n1,a\n", tmp_path)
    delete(url)
    out = list(read_csv_file(url, required=["id", "v"], checksum=True))
    reasons = [r for _, rejects in out for r in rejects.column("reason").to_pylist()]
    assert len(reasons) == 1 and reasons[0].startswith("cannot open") and url in reasons[0]


def test_the_registry_knows_an_object_by_etag_and_size_and_its_bytes_by_checksum(
    exports: Location, tmp_path: Path, ledger: Ledger
) -> None:
    data = b"id,v\n1,a\n"
    url = _put(exports, "pos_2026-11-19.csv", data, tmp_path / "up")
    mapping = _mapping(f"{exports}/pos_*.csv")
    registry = FileRegistry(ledger, "pos")
    assert _ids(mapping, DAY, registry) == ["1"]
    (row,) = registry.files()
    (listed,) = list_files(f"{exports}/pos_*.csv")
    assert (row.path, row.sha256, row.size, row.etag) == (
        url,
        hashlib.sha256(data).hexdigest(),
        len(data),
        listed.etag,
    )
    assert registry.checksum_of(url, str(listed.etag), len(data)) == row.sha256
    assert registry.checksum_of(url, str(listed.etag), len(data) + 1) is None
    # the same bytes uploaded again: ingested under its day, skipped under another
    _put(exports, "pos_2026-11-19.csv", data, tmp_path / "up")
    assert _ids(mapping, "2026-11-20", registry, window=DAY) == []
    # changed bytes (a new ETag): ingested again
    _put(exports, "pos_2026-11-19.csv", b"id,v\n1,a\n2,b\n", tmp_path / "up")
    assert _ids(mapping, "2026-11-20", registry, window=DAY) == ["1", "2"]
    assert len({f.etag for f in registry.files()}) == 2
    assert not list((tmp_path / "up").glob("*")), "the uploads' local copies are gone"


def test_the_pos_sensor_launches_new_and_changed_objects_by_etag(
    exports: Location, tmp_path: Path, ledger: Ledger
) -> None:
    settings = Settings(state_dir=tmp_path / "state", partition_start=dt.date(2026, 11, 1))
    mapping = _mapping(f"{exports}/pos_*.csv")
    data = b"id,v\n1,a\n"
    _put(exports, "pos_2026-11-19.csv", data, tmp_path)
    first = new_source_files([mapping], settings, ArrivalCursor(), NOW, ledger)
    assert list(first.runs) == [("pos", DAY)]
    assert first.hashed == [], "a new object is launched by its ETag, not downloaded"
    # the run ingests it; a sensor with an empty cursor (another instance) launches nothing
    assert _ids(mapping, DAY, FileRegistry(ledger, "pos")) == ["1"]
    again = new_source_files([mapping], settings, ArrivalCursor(), NOW, ledger)
    assert (again.runs, again.hashed) == ({}, [])
    # the same bytes uploaded again keep their ETag: nothing
    _put(exports, "pos_2026-11-19.csv", data, tmp_path)
    same = new_source_files([mapping], settings, first.cursor, NOW, ledger)
    assert (same.runs, same.hashed) == ({}, [])
    # a registry row without the ETag (written before it was kept): hashed once, still known
    with ledger.session() as session:
        session.execute(update(IngestedFile).values(etag=None))
    unknown = new_source_files([mapping], settings, ArrivalCursor(), NOW, ledger)
    assert (unknown.runs, len(unknown.hashed)) == ({}, 1)
    assert not new_source_files([mapping], settings, unknown.cursor, NOW, ledger).hashed
    # new bytes: a new ETag, streamed once to tell them from the ingested ones, launched again
    _put(exports, "pos_2026-11-19.csv", b"id,v\n1,b\n", tmp_path)
    changed = new_source_files([mapping], settings, first.cursor, NOW, ledger)
    assert list(changed.runs) == [("pos", DAY)] and len(changed.hashed) == 1
    assert changed.cursor != first.cursor


def test_validate_probes_an_objects_header(exports: Location, tmp_path: Path) -> None:
    _put(exports, "pos_2026-11-19.csv", b"id,w\n1,a\n", tmp_path)
    settings = Settings(state_dir=tmp_path / "state")
    (problem,) = probe(_mapping(f"{exports}/pos_*.csv"), settings)
    assert problem == (
        f"pos: {exports}/pos_2026-11-19.csv: column(s) 'v' not in the header (have: id, w)"
    )


def test_an_objects_checksum_is_taken_from_the_one_download_it_is_parsed_from(
    exports: Location, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    url = _put(exports, "pos_2026-11-19.csv", data, tmp_path)
    whole = ChecksumWhileReading(url)
    with io.BufferedReader(whole, buffer_size=1 << 20) as reader:
        assert reader.read() == data
    delete(url)  # read to its end: the checksum needs no second download
    assert whole.result() == (hashlib.sha256(data).hexdigest(), len(data))

    url = _put(exports, "pos_2026-11-19.csv", data, tmp_path)
    early = ChecksumWhileReading(url)
    with io.BufferedReader(early, buffer_size=1 << 20) as reader:
        reader.read(1000)  # a read that stops early: the rest is streamed again past them
    assert early.result() == (hashlib.sha256(data).hexdigest(), len(data))
    assert file_sha256(url) == early.result()
