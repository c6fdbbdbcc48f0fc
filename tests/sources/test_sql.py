"""SQL extraction on SQLite, PostgreSQL and MariaDB: windows, exact text, streaming, errors."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    insert,
    update,
)

from connector.columns import SEQ, SOURCE_REF
from connector.ledger import Ledger
from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources import SourceError, high_water_mark, iter_source_chunks, record_cursor
from connector.sql_urls import masked_url
from connector.transform import map_chunk

TZ = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def table(db_url: str) -> Iterator[tuple[str, Table]]:
    name = f"cust_{uuid.uuid4().hex[:10]}"
    meta = MetaData()
    tbl = Table(
        name,
        meta,
        Column("customer_id", String(40), primary_key=True),
        Column("email", Text),
        Column("ltv", Numeric(12, 2)),
        Column("note", Text),
        Column("updated_at", DateTime, nullable=False),
    )
    engine = create_engine(db_url)
    meta.create_all(engine)
    try:
        yield db_url, tbl
    finally:
        meta.drop_all(engine)
        engine.dispose()


def insert_rows(url: str, tbl: Table, rows: list[dict]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(tbl), rows)
    engine.dispose()


def sql_mapping(url: str, table: str, *, extra: str = "") -> object:
    return parse_mapping(
        f"""
name: crm
source: {{kind: sql, url: "{url}", table: {table}, cursor: updated_at{extra}}}
destination: target
identity: {{column: customer_id, type: thirdPartyId}}
params:
  email: email
  ltv: {{column: ltv, type: decimal, format: "0.00"}}
  note: note
"""
    )


def read(mapping, day: str, chunk_rows: int = 1000) -> tuple[pa.Table, list]:
    chunks = list(
        iter_source_chunks(mapping, day, day_window(day, TZ), chunk_rows=chunk_rows, registry=None)
    )
    tables = [c.table for c in chunks if c.table.num_rows]
    return (pa.concat_tables(tables) if tables else None), chunks


def test_window_exact_text_and_refs(table: tuple[str, Table]) -> None:
    url, tbl = table
    insert_rows(
        url,
        tbl,
        [
            {
                "customer_id": "c1",
                "email": "a@x.nl",
                "ltv": Decimal("10.10"),
                "note": 'say "hi", & 50%\nok',
                "updated_at": dt.datetime(2026, 11, 19, 0, 0, 0),
            },
            {
                "customer_id": "c2",
                "email": "é@x.nl",
                "ltv": None,
                "note": "",
                "updated_at": dt.datetime(2026, 11, 19, 23, 59, 59),
            },
            {
                "customer_id": "c3",
                "email": "b@x.nl",
                "ltv": Decimal("0.30"),
                "note": None,
                "updated_at": dt.datetime(2026, 11, 20, 0, 0, 0),
            },
            {
                "customer_id": "c0",
                "email": "z@x.nl",
                "ltv": Decimal("1"),
                "note": None,
                "updated_at": dt.datetime(2026, 11, 18, 23, 59, 59),
            },
        ],
    )
    got, chunks = read(sql_mapping(url, tbl.name), "2026-11-19")
    assert got.column("customer_id").to_pylist() == ["c1", "c2"]
    assert got.column(SOURCE_REF).to_pylist() == [f"{tbl.name}:c1", f"{tbl.name}:c2"]
    assert got.column(SEQ).to_pylist() == [0, 1]
    assert got.column("ltv").to_pylist() == ["10.10", None] or got.column("ltv").to_pylist() == [
        "10.1",
        None,
    ]
    assert got.column("note").to_pylist() == ['say "hi", & 50%\nok', ""]
    assert got.column("email").to_pylist() == ["a@x.nl", "é@x.nl"]
    assert all(pa.types.is_string(got.schema.field(n).type) for n in got.column_names if n != SEQ)
    assert chunks[-1].high_water.startswith("2026-11-19")
    mapped, rejects = map_chunk(sql_mapping(url, tbl.name), got)
    assert mapped.column("ltv").to_pylist() == ["10.10", None] and rejects.num_rows == 0


def test_incremental_three_days_reads_each_change_once(
    table: tuple[str, Table], tmp_path: Path
) -> None:
    url, tbl = table
    mapping = sql_mapping(url, tbl.name)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_all()
    engine = create_engine(url)
    seen: list[tuple[str, str]] = []
    days = ["2026-11-18", "2026-11-19", "2026-11-20"]
    for n, day in enumerate(days):
        moment = dt.datetime.fromisoformat(day) + dt.timedelta(hours=10)
        with engine.begin() as conn:
            conn.execute(
                insert(tbl), [{"customer_id": f"new{n}", "email": f"{n}@x", "updated_at": moment}]
            )
            if n:  # yesterday's customer changes today
                conn.execute(
                    update(tbl)
                    .where(tbl.c.customer_id == f"new{n - 1}")
                    .values(email="changed", updated_at=moment)
                )
        got, chunks = read(mapping, day, chunk_rows=1)
        seen += list(
            zip(got.column("customer_id").to_pylist(), got.column("email").to_pylist(), strict=True)
        )
        record_cursor(ledger, mapping.name, day, chunks[-1].high_water)
    engine.dispose()
    assert seen == [
        ("new0", "0@x"),
        ("new0", "changed"),
        ("new1", "1@x"),
        ("new1", "changed"),
        ("new2", "2@x"),
    ]
    assert high_water_mark(ledger, mapping.name).startswith("2026-11-20")
    record_cursor(ledger, mapping.name, "2026-11-18", "2026-11-18 10:00:00")  # a backfill
    assert high_water_mark(ledger, mapping.name).startswith("2026-11-20")
    ledger.dispose()


def test_chunks_are_bounded(table: tuple[str, Table]) -> None:
    url, tbl = table
    base = dt.datetime(2026, 11, 19, 1)
    insert_rows(
        url,
        tbl,
        [
            {"customer_id": f"c{i:04d}", "updated_at": base + dt.timedelta(seconds=i)}
            for i in range(250)
        ],
    )
    _, chunks = read(sql_mapping(url, tbl.name), "2026-11-19", chunk_rows=100)
    assert [c.table.num_rows for c in chunks] == [100, 100, 50]
    seqs = pa.concat_tables([c.table for c in chunks]).column(SEQ).to_pylist()
    assert seqs == list(range(250))


def test_missing_table_and_column_are_clear(table: tuple[str, Table]) -> None:
    url, tbl = table
    with pytest.raises(SourceError, match=r"crm: table 'nope' not found \(have: .*" + tbl.name):
        read(sql_mapping(url, "nope"), "2026-11-19")
    bad = parse_mapping(
        f"""
name: crm
source: {{kind: sql, url: "{url}", table: {tbl.name}, cursor: updated_at}}
destination: target
identity: {{column: customer_id, type: thirdPartyId}}
params: {{city: City}}
"""
    )
    with pytest.raises(
        SourceError,
        match=r"crm: params.city: column 'City' not in table .* "
        r"\(have: customer_id, email, ltv, note, updated_at\)",
    ):
        read(bad, "2026-11-19")


def test_query_source(table: tuple[str, Table]) -> None:
    url, tbl = table
    insert_rows(
        url,
        tbl,
        [{"customer_id": "q1", "email": "q@x", "updated_at": dt.datetime(2026, 11, 19, 12)}],
    )
    mapping = parse_mapping(
        f"""
name: crmq
source: {{kind: sql, url: "{url}", query: "select customer_id, email, updated_at from {tbl.name}",
  cursor: updated_at, key: customer_id}}
destination: target
identity: {{column: customer_id, type: thirdPartyId}}
params: {{email: email}}
"""
    )
    got, _ = read(mapping, "2026-11-19")
    assert got.column("email").to_pylist() == ["q@x"]
    assert got.column(SOURCE_REF).to_pylist() == ["crmq:q1"]


def test_sqlite_text_datetimes_and_missing_file(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("create table t (id integer, v numeric, at datetime)")
        conn.exec_driver_sql(
            "insert into t values (1, 0.1, '2026-11-19'), (2, 2.50, '2026-11-19T23:00:00'),"
            " (3, 3, '2026-11-19 08:00:00.123'), (4, 4, '2026-11-20'),"
            " (5, 5, '2026-11-18T23:59:59')"
        )
    engine.dispose()
    mapping = parse_mapping(
        f"""
name: t
source: {{kind: sql, url: "sqlite:///{db}", table: t, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{v: v}}
"""
    )
    got, _ = read(mapping, "2026-11-19")
    assert sorted(got.column("id").to_pylist()) == ["1", "2", "3"]
    assert got.column(SOURCE_REF).to_pylist()[0].startswith("t:2026-11-19#")  # no primary key
    assert set(got.column("v").to_pylist()) == {"0.1", "2.5", "3"}
    gone = mapping.model_copy(
        update={
            "source": mapping.source.model_copy(
                update={"url": f"sqlite:///{tmp_path / 'missing.db'}"}
            )
        }
    )
    with pytest.raises(SourceError, match="does not exist"):
        read(gone, "2026-11-19")
    assert not (tmp_path / "missing.db").exists()


def test_password_is_masked() -> None:
    assert masked_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.booleans(),
            st.floats(allow_nan=False),
            st.text(max_size=4),
        ),
        max_size=20,
    ),
    st.sampled_from(["int", "mixed"]),
)
def test_column_array_writes_every_value_as_value_text(values, shape) -> None:  # type: ignore[no-untyped-def]
    from connector.sources.sql_text import column_array, value_text

    if shape == "int":  # the fast path: integers (and nulls) only
        values = [v for v in values if v is None or type(v) is int]
    assert column_array(values).to_pylist() == [value_text(v) for v in values]
