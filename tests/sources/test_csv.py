"""CSV extraction: exact text, line refs, blocks, gzip, partition days, the file registry."""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.columns import SEQ, SOURCE_REF
from connector.ledger import Ledger
from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources import FileRegistry, iter_source_chunks
from connector.sources.csv import read_csv_file
from connector.sources.csv_parse import newlines_per_value
from connector.sources.registry import file_sha256

TZ = ZoneInfo("UTC")


def csv_mapping(glob: str, extra: str = ""):
    return parse_mapping(
        f"""
name: pos
source: {{kind: csv, path: "{glob}"{extra}}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{v: v}}
"""
    )


def read_all(path: Path, **kw) -> tuple[pa.Table, pa.Table]:
    parts = list(read_csv_file(str(path), required=("id", "v"), **kw))
    return pa.concat_tables(
        [p[0] for p in parts if p[0].num_columns > 2] or [parts[0][0]]
    ), pa.concat_tables([p[1] for p in parts])


def test_line_refs_with_embedded_newlines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'id,v\r\n1,"a\r\nb"\r\n2,"x,""y"""\r\n3,\r\n4,  sp  \r\n')
    rows, rejects = read_all(path)
    assert rows.column("v").to_pylist() == ["a\r\nb", 'x,"y"', "", "  sp  "]
    assert rows.column(SOURCE_REF).to_pylist() == [f"{path}:{n}" for n in (2, 4, 5, 6)]
    assert rejects.num_rows == 0


@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
def test_small_blocks_give_the_same_rows(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "b.csv"
    lines = ["id,v"] + [f'{i},"v{i}\nmore"' if i % 7 == 0 else f"{i},v{i}" for i in range(200)]
    path.write_text("\n".join(lines) + "\n")
    rows, _ = read_all(path, block_bytes=block_bytes, chunk_rows=30)
    assert rows.column("id").to_pylist() == [str(i) for i in range(200)]
    assert rows.column(SEQ).to_pylist() == list(range(200))
    expected, line = [], 2
    for i in range(200):
        expected.append(f"{path}:{line}")
        line += 2 if i % 7 == 0 else 1
    assert rows.column(SOURCE_REF).to_pylist() == expected


@pytest.mark.parametrize("form", ["plain", "gzip", "bom", "cp1252"])
@pytest.mark.parametrize("block_bytes", [7, 64])
def test_small_blocks_in_every_file_form_give_the_same_rows(
    tmp_path: Path, form: str, block_bytes: int
) -> None:
    """UTF-8 blocks are read into one buffer after the previous block's tail, other forms
    are joined as read: each gives the same rows and lines, whatever the block size."""
    lines = ["id,v"] + [f'{i},"v{i}\nné"' if i % 5 == 0 else f"{i},é{i}" for i in range(120)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "f.csv"
    if form == "gzip":
        path = tmp_path / "f.csv.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    elif form == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    elif form == "cp1252":
        path.write_bytes(text.encode("cp1252"))
    else:
        path.write_text(text, encoding="utf-8")
    encoding = "cp1252" if form == "cp1252" else "utf-8"
    rows, rejects = read_all(path, block_bytes=block_bytes, chunk_rows=25, encoding=encoding)
    assert rejects.num_rows == 0
    assert rows.column("v").to_pylist() == [
        f"v{i}\nné" if i % 5 == 0 else f"é{i}" for i in range(120)
    ]
    expected, line = [], 2
    for i in range(120):
        expected.append(f"{path}:{line}")
        line += 2 if i % 5 == 0 else 1
    assert rows.column(SOURCE_REF).to_pylist() == expected


def test_gzip_and_partition_days(tmp_path: Path) -> None:
    (tmp_path / "pos_2026-11-19.csv").write_text("id,v\n1,a\n")
    with gzip.open(tmp_path / "pos_20261120.csv.gz", "wt") as fh:
        fh.write("id,v\n2,b\n")
    (tmp_path / "pos_2026-11-21.txt").write_text("id,v\n3,c\n")
    (tmp_path / "undated.csv").write_text("id,v\n4,d\n")
    mapping = csv_mapping(f"{tmp_path}/*")
    for day, expected in (("2026-11-19", ["1"]), ("2026-11-20", ["2"]), ("2026-11-21", [])):
        chunks = list(
            iter_source_chunks(mapping, day, day_window(day, TZ), chunk_rows=10, registry=None)
        )
        ids = [i for c in chunks for i in c.table.column("id").to_pylist()]
        assert ids == expected


def test_mtime_dates(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id,v\n1,a\n")
    moment = 1_795_000_000  # 2026-11-18T...Z
    os.utime(path, (moment, moment))
    mapping = csv_mapping(f"{tmp_path}/*.csv", ", date_from: mtime")
    import datetime as dt

    day = dt.datetime.fromtimestamp(moment, TZ).date().isoformat()
    chunks = list(
        iter_source_chunks(mapping, day, day_window(day, TZ), chunk_rows=10, registry=None)
    )
    assert [c.table.num_rows for c in chunks] == [1]


@pytest.fixture
def registry_env(tmp_path: Path):  # type: ignore[no-untyped-def]
    """(registry, exports folder) over a fresh SQLite ledger."""
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_all()
    exports = tmp_path / "exports"
    exports.mkdir()
    yield FileRegistry(ledger, "pos"), exports
    ledger.dispose()


def test_registry_once_rerun_and_changed(registry_env) -> None:  # type: ignore[no-untyped-def]
    registry, exports = registry_env
    path = exports / "pos_2026-11-19.csv"
    path.write_text("id,v\n1,a\n")
    mapping = csv_mapping(f"{exports}/*.csv")

    def run(day: str, window_day: str | None = None) -> list[str]:
        window = day_window(window_day or day, TZ)
        chunks = iter_source_chunks(mapping, day, window, chunk_rows=10, registry=registry)
        return [i for c in chunks for i in c.table.column("id").to_pylist()]

    assert run("2026-11-19") == ["1"]
    # a new file is hashed while it is parsed: the checksum recorded is still the file's
    assert [(f.sha256, f.size) for f in registry.files()] == [file_sha256(path)]
    assert run("2026-11-19") == ["1"]  # rerun of the same partition: read again
    assert run("2026-11-20", "2026-11-19") == []  # ingested under another partition: skipped
    path.write_text("id,v\n1,a\n2,b\n")  # changed content: noticed
    assert run("2026-11-20", "2026-11-19") == ["1", "2"]
    assert [f.rows for f in registry.files()] == [1, 2]


def test_other_encodings(tmp_path: Path) -> None:
    latin = tmp_path / "pos_2026-11-19.csv"
    latin.write_bytes("id;v\n1;café\n".encode("cp1252"))
    mapping = csv_mapping(f"{tmp_path}/*.csv", ", encoding: cp1252, delimiter: ';'")
    chunks = list(
        iter_source_chunks(
            mapping, "2026-11-19", day_window("2026-11-19", TZ), chunk_rows=10, registry=None
        )
    )
    assert chunks[0].table.column("v").to_pylist() == ["café"]


values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(values, values), min_size=1, max_size=30),
    st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL]),
)
def test_csv_values_survive_exactly(
    tmp_path: Path, rows: list[tuple[str, str]], quoting: int
) -> None:
    buf = io.StringIO()
    # "\r\n" line ends: Python quotes a value holding a bare \r only when \r is in them
    writer = csv.writer(buf, lineterminator="\r\n", quoting=quoting)
    writer.writerow(["id", "v"])
    writer.writerows(rows)
    path = tmp_path / "p.csv"
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    got, rejects = read_all(path, block_bytes=16)
    assert rejects.num_rows == 0
    assert list(zip(got.column("id").to_pylist(), got.column("v").to_pylist(), strict=True)) == rows
    line, expected = 2, []
    for a, b in rows:
        expected.append(f"{path}:{line}")
        line += 1 + (a + b).count("\n")  # physical lines are counted by \n
    assert got.column(SOURCE_REF).to_pylist() == expected


@pytest.mark.parametrize("where", ["middle", "last"])
def test_a_line_over_the_limit_is_skipped_unread_and_the_rows_around_it_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from connector.sources import csv_blocks

    monkeypatch.setattr(csv_blocks, "MAX_BLOCK_BYTES", 1000)
    path = tmp_path / "long.csv"
    tail = "\nA2,after\nA3,later\n" if where == "middle" else "\n"
    path.write_text("id,name\nA1,before\nH1," + "x" * 5000 + tail, encoding="utf-8")
    rows, rejects = [], []
    for table, rej in read_csv_file(str(path), required=["id", "name"], block_bytes=256):
        rows += table.column("id").to_pylist()
        rejects += list(
            zip(rej.column("source_ref").to_pylist(), rej.column("reason").to_pylist(), strict=True)
        )
    expected_rows = ["A1", "A2", "A3"] if where == "middle" else ["A1"]
    assert rows == expected_rows
    assert rejects == [(f"{path}:3", "line longer than 1000 bytes: skipped unread")]
    if where == "middle":
        refs = []
        for table, _ in read_csv_file(str(path), required=["id", "name"], block_bytes=256):
            refs += table.column(SOURCE_REF).to_pylist()
        assert refs == [f"{path}:2", f"{path}:4", f"{path}:5"]  # line numbers stay right


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.binary(max_size=12).map(lambda b: b.replace(b"\r", b""))),
        max_size=30,
    ),
    st.data(),
)
def test_newlines_per_value_counts_each_values_own_newlines(values, data) -> None:  # type: ignore[no-untyped-def]
    """Against counting per value in Python, on slices (offsets not rebased) too."""
    whole = pa.array([None if v is None else v + b"\n" * (len(v) % 3) for v in values], pa.binary())
    start = data.draw(st.integers(0, len(whole)))
    stop = data.draw(st.integers(start, len(whole)))
    for col in (whole, whole.slice(start, stop - start), whole.cast(pa.large_binary())):
        want = [0 if v is None else v.count(b"\n") for v in col.to_pylist()]
        assert newlines_per_value(col).tolist() == want


def _write_export(path: Path, kind: str) -> None:
    body = "id,v\n" + "".join(
        f'{i},"value {i}, with ""quotes""\n and a newline"\n' for i in range(30000)
    )
    if kind == "plain":
        path.write_text(body)
    elif kind == "gzip":
        path.write_bytes(gzip.compress(body.encode()))
    elif kind == "utf-16":
        path.write_bytes(body.encode("utf-16"))
    elif kind == "bad-header":  # read stops after the header: the rest is hashed apart
        path.write_text("nope,other\n" + body)
    elif kind == "header-only":
        path.write_text("id,v\n")


@pytest.mark.parametrize("kind", ["plain", "gzip", "utf-16", "bad-header", "header-only"])
def test_checksum_taken_while_reading_is_the_whole_files(tmp_path: Path, kind: str) -> None:
    suffix = ".csv.gz" if kind == "gzip" else ".csv"
    path = tmp_path / f"pos_2026-11-19{suffix}"
    _write_export(path, kind)
    from connector.sources.csv import FileResult

    result = FileResult()
    # small blocks: the file is read in many pieces, each hashed as it comes
    list(
        read_csv_file(
            str(path), required=["id", "v"], result=result, block_bytes=4096, checksum=True
        )
    )
    assert result.checksum is not None
    assert result.checksum.result() == file_sha256(path)
    result.checksum.close()
    assert result.checksum.result() == file_sha256(path)  # also once closed


def test_registry_records_the_checksum_of_each_new_file(registry_env) -> None:  # type: ignore[no-untyped-def]
    registry, exports = registry_env
    paths = [exports / "pos_2026-11-19_a.csv", exports / "pos_2026-11-19_b.csv.gz"]
    _write_export(paths[0], "plain")
    _write_export(paths[1], "gzip")
    mapping = csv_mapping(f"{exports}/*")
    window = day_window("2026-11-19", TZ)
    chunks = list(
        iter_source_chunks(mapping, "2026-11-19", window, chunk_rows=500, registry=registry)
    )
    assert sum(c.table.num_rows for c in chunks) == 60000
    recorded = {f.path: (f.sha256, f.size) for f in registry.files()}
    assert recorded == {str(p): file_sha256(p) for p in paths}


def test_registry_records_each_file_as_listed_before_it_was_read(registry_env) -> None:  # type: ignore[no-untyped-def]
    """Size and ETag (a local file's: its size and mtime) beside the checksum: what the POS
    sensor compares a listing with, so that it hashes only files listed otherwise."""
    from connector.sources.registry import Recorded
    from connector.storage import local_etag

    registry, exports = registry_env
    path = exports / "pos_2026-11-19.csv"
    path.write_text("id,v\n1,a\n")
    window = day_window("2026-11-19", TZ)
    mapping = csv_mapping(f"{exports}/*.csv")
    list(iter_source_chunks(mapping, "2026-11-19", window, chunk_rows=10, registry=registry))
    sha, size = file_sha256(path)
    etag = local_etag(os.stat(path))
    assert registry.recorded() == {str(path): [Recorded(sha, size, etag)]}


def test_unopenable_file_is_a_reject_with_no_checksum(tmp_path: Path) -> None:
    from connector.sources.csv import FileResult

    path = tmp_path / "pos_2026-11-19.csv"
    path.mkdir()  # cannot be opened as a file
    result = FileResult()
    out = list(read_csv_file(str(path), required=["id", "v"], result=result, checksum=True))
    reasons = [r for _, rejects in out for r in rejects.column("reason").to_pylist()]
    assert len(reasons) == 1 and reasons[0].startswith("cannot open")
    assert result.checksum is None  # nothing to record for it


def _pos_lines(n: int) -> list[str]:
    return ["id,v,amount"] + [f"Q{i:07d},S{i},3.00" for i in range(n)]


@pytest.mark.parametrize("block_bytes", [None, 4096])
@pytest.mark.parametrize("closed_later", [False, True], ids=["never-closed", "closed-later"])
def test_an_unclosed_quote_costs_its_line_only(
    tmp_path: Path, block_bytes: int | None, closed_later: bool
) -> None:
    """A quote left open at line 5,002 of 10,001: that line is rejected with its text and
    every other row is read (read = rejected + rows). ``closed-later``: a quoted value
    6,000 lines on closes it, so a parse that trusts quotes would read one row spanning
    6,000 lines."""
    lines = _pos_lines(10_000)
    lines[5001] = 'Q0005000,"S1,3.00'
    if closed_later:
        lines[9001] = 'Q0009000,"S9000, with a comma",3.00'
    path = tmp_path / "pos.csv"
    path.write_text("\n".join(lines) + "\n")
    kw = {} if block_bytes is None else {"block_bytes": block_bytes}
    rows, rejects = read_all(path, **kw)
    assert rows.num_rows + rejects.num_rows == 10_000
    assert rejects.to_pylist() == [
        {
            "source_ref": f"{path}:5002",
            "identity": "Q0005000",
            "param": None,
            "reason": rejects.column("reason")[0].as_py(),
            "raw": 'Q0005000,"S1,3.00',
        }
    ]
    assert "quote" in rejects.column("reason")[0].as_py()
    ids = rows.column("id").to_pylist()
    assert len(ids) == 9_999 and "Q0005000" not in ids and "Q0005001" in ids
    assert rows.column(SOURCE_REF).to_pylist()[5000] == f"{path}:5003"
    if closed_later:
        at = ids.index("Q0009000")
        assert rows.column("v")[at].as_py() == "S9000, with a comma"


def test_a_long_multi_line_value_that_is_well_formed_is_kept(tmp_path: Path) -> None:
    """The resync applies to rows that cannot be read; a quoted value over many lines with
    the right field count stays one row."""
    lines = _pos_lines(10)
    lines[3] = 'Q0000002,"' + "\n".join(f"line {i}" for i in range(50)) + '",3.00'
    path = tmp_path / "pos.csv"
    path.write_text("\n".join(lines) + "\n")
    rows, rejects = read_all(path)
    assert rejects.num_rows == 0 and rows.num_rows == 10
    assert rows.column("v")[2].as_py().count("\n") == 49
