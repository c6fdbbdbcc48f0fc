"""Staged parts: IPC files written and read back, and Parquet parts still read alike."""

from __future__ import annotations

import gc
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.profiles import staging


def _table(start: int, n: int, *, extra: bool = True) -> pa.Table:
    columns = {
        "_identity": pa.array([f"id-{i}" for i in range(start, start + n)]),
        "_seq": pa.array(range(start, start + n), pa.int64()),
        "email": pa.array([None if i % 3 == 0 else f"é{i}@x" for i in range(start, start + n)]),
    }
    if extra:
        columns["tier"] = pa.array(["gold"] * n)
    return pa.table(columns)


def test_a_part_reads_back_equal_and_outlives_its_file_handle(tmp_path: Path) -> None:
    table = pa.concat_tables([_table(0, 5), _table(5, 7)])  # two record batches
    path = staging.part_path(tmp_path, 3)
    assert path.name == "part-00003.arrow"
    staging.write(table, path)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it
    got = staging.read(path)
    gc.collect()
    assert got.equals(table)
    assert staging.schema(path) == table.schema
    assert staging.read(path, ["email", "missing", "_seq"]).column_names == ["email", "_seq"]
    batches = list(staging.iter_batches(path, 4, ["_seq"]))
    assert [b.num_rows for b in batches] == [4, 1, 4, 3]
    assert pa.Table.from_batches(batches).column("_seq").to_pylist() == list(range(12))
    assert staging.head(path, 2, drop=("tier",)) == [
        {"_identity": "id-0", "_seq": 0, "email": None},
        {"_identity": "id-1", "_seq": 1, "email": "é1@x"},
    ]


def test_parquet_parts_read_the_same_way(tmp_path: Path) -> None:
    table = _table(0, 9)
    ipc, parquet = tmp_path / "part-00001.arrow", tmp_path / "part-00002.parquet"
    staging.write(table, ipc)
    pq.write_table(table, parquet)
    (tmp_path / ".part-00003.arrow.tmp").write_bytes(b"torn")  # a write that never finished
    (tmp_path / "notes.txt").write_text("not a part")
    assert staging.parts(tmp_path) == [ipc, parquet]
    assert staging.parts(tmp_path / "absent") == []
    for path in (ipc, parquet):
        assert staging.read(path, ["_seq", "email"]).equals(table.select(["_seq", "email"]))
        assert staging.head(path, 20) == table.to_pylist()
    assert staging.has_columns([ipc, parquet], ["_seq", "email"])
    assert not staging.has_columns([ipc, parquet], ["_digest"])


@pytest.mark.parametrize(
    "kinds", [("arrow", "arrow"), ("parquet", "parquet"), ("arrow", "parquet")]
)
def test_duckdb_reads_the_parts_by_name_with_missing_columns_null(
    tmp_path: Path, kinds: tuple[str, str]
) -> None:
    first, second = _table(0, 4, extra=False), _table(4, 3)  # the first has no "tier"
    paths = []
    for number, (table, kind) in enumerate(zip((first, second), kinds, strict=True), start=1):
        path = staging.part_path(tmp_path, number).with_suffix(f".{kind}")
        if kind == "arrow":
            staging.write(table, path)
        else:
            pq.write_table(table, path)
        paths.append(path)
    con = duckdb.connect()
    try:
        source = staging.duck_source(con, paths, "_staged")
        rows = con.sql(f"SELECT _seq, email, tier FROM {source} ORDER BY _seq").fetchall()
        # only the columns asked for, read more than once
        narrow = staging.duck_source(con, paths, "_keys", ["_seq", "tier"])
        assert con.sql(f"SELECT * FROM {narrow} LIMIT 0").columns == ["_seq", "tier"]
        for _ in range(2):
            keys = con.sql(f"SELECT _seq, tier FROM {narrow} ORDER BY _seq").fetchall()
            assert keys == [(seq, tier) for seq, _, tier in rows]
    finally:
        con.close()
    want = [(r["_seq"], r["email"], r.get("tier")) for r in first.to_pylist() + second.to_pylist()]
    assert rows == want


def test_duckdb_needs_at_least_one_part() -> None:
    con = duckdb.connect()
    try:
        with pytest.raises(ValueError, match="no staged parts"):
            staging.duck_source(con, [], "_staged")
    finally:
        con.close()
