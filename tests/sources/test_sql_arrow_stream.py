"""The Arrow reader streams: bounded batches from the driver, bounded chunks out, the window
filtered by the database on an index; and the small parts it is made of."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from sqlalchemy import column, create_engine, select, table
from sqlalchemy.engine import make_url

from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources.sql_arrow import (
    SQLITE_BATCH_ROWS,
    bound_to_settings,
    open_read,
    postgres_query,
    rechunk,
)
from connector.sources.sql_paths import arrow_driver, libpq_conninfo, sqlite_database
from connector.sources.sql_plan import SqlPlan
from connector.sources.sql_select_sqlite import sqlite_affinity
from connector.sql_urls import without_password

UTC = ZoneInfo("UTC")
DAY = "2026-11-19"
MILLION = 1_000_000
CHUNK = 100_000
MIB = 1024 * 1024


def mapping_for(url: str, name: str) -> object:
    return parse_mapping(
        f"""
name: big
source: {{kind: sql, url: "{url}", table: {name}, cursor: updated_at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{name: name}}
"""
    )


def read_streamed(url: str, name: str) -> tuple[list[tuple[int, int]], int, list[int]]:
    """Read the window through the Arrow reader: the driver's batches (rows, bytes), the
    rows it had delivered when the first chunk was out, and every chunk's size."""
    mapping = mapping_for(url, name)
    engine = create_engine(url)
    with engine.connect() as conn:
        plan = SqlPlan(conn, mapping, mapping.source)
    engine.dispose()
    driver = arrow_driver(url)
    assert driver is not None
    pulled: list[tuple[int, int]] = []
    with (
        contextlib.closing(driver.connect(url)) as conn,
        open_read(driver, conn, plan, day_window(DAY, UTC)) as read,
    ):

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in read.batches:
                pulled.append((batch.num_rows, batch.nbytes))
                yield batch

        chunks = rechunk(counted(), CHUNK)
        first = next(chunks)
        delivered_at_first = sum(rows for rows, _ in pulled)
        sizes = [first.num_rows]
        for chunk in chunks:
            assert read.texts(chunk)[0].to_pylist()[:1]  # made text, then let go
            sizes.append(chunk.num_rows)
    return pulled, delivered_at_first, sizes


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_million_rows_come_in_bounded_batches(postgres_url: str) -> None:
    name = f"big_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {name} (id bigint primary key, name text, updated_at timestamp)"
        )
        conn.exec_driver_sql(
            f"insert into {name} select g, repeat('x', 80) || g, "
            f"timestamp '2026-11-19' + g * interval '80 milliseconds' "
            f"from generate_series(0, {MILLION - 1}) g"
        )
    try:
        pulled, delivered_at_first, sizes = read_streamed(postgres_url, name)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()
    assert sum(sizes) == MILLION and sizes == [CHUNK] * (MILLION // CHUNK)
    # COPY streams: the first chunk was out after a few of the driver's batches, not after
    # the whole result (a statement with parameters would have come as one batch of 1M rows)
    assert delivered_at_first < 3 * CHUNK
    assert len(pulled) > 5
    assert max(nbytes for _, nbytes in pulled) < 32 * MIB  # about 16 MB each


@pytest.mark.slow
def test_sqlite_million_rows_come_in_bounded_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    con = sqlite3.connect(path)
    con.execute("create table big (id integer primary key, name text, updated_at datetime)")
    con.execute(
        f"""with recursive g(i) as (select 0 union all select i + 1 from g where i < {MILLION - 1})
        insert into big select i, 'name ' || i,
            strftime('%Y-%m-%d %H:%M:%f', '2026-11-19', printf('+%.3f seconds', i * 0.086))
        from g"""
    )
    con.execute("create index big_updated_at on big (updated_at)")
    con.commit()
    con.close()
    pulled, delivered_at_first, sizes = read_streamed(f"sqlite:///{path}", "big")
    assert sum(sizes) == MILLION and sizes == [CHUNK] * (MILLION // CHUNK)
    assert delivered_at_first < CHUNK + SQLITE_BATCH_ROWS
    assert max(rows for rows, _ in pulled) <= SQLITE_BATCH_ROWS


@pytest.mark.postgres
@pytest.mark.parametrize("cursor_type", ["timestamp", "timestamptz"])
def test_postgres_window_is_an_index_scan_on_the_cursor(
    postgres_url: str, cursor_type: str
) -> None:
    """The statement the Arrow reader streams, with its bounds bound to session settings:
    PostgreSQL reads the day through the cursor column's index."""
    name = f"idx_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {name} (id bigint primary key, name text, updated_at {cursor_type})"
        )
        conn.exec_driver_sql(  # 400 days of rows
            f"insert into {name} select g, 'n' || g, "
            f"timestamp '2026-01-01' + g * interval '10 minutes' from generate_series(0, 57599) g"
        )
        conn.exec_driver_sql(f"create index {name}_updated_at on {name} (updated_at)")
        conn.exec_driver_sql(f"analyze {name}")
    try:
        mapping = mapping_for(postgres_url, name)
        with engine.connect() as conn:
            plan = SqlPlan(conn, mapping, mapping.source)
            sql, settings = postgres_query(plan, day_window(DAY, ZoneInfo("Europe/Amsterdam")))
            for setting, value in settings:
                conn.exec_driver_sql("select set_config(%s, %s, false)", (setting, value))
            explained = conn.exec_driver_sql(f"explain (format json) {sql}").scalar_one()
            rows = conn.exec_driver_sql(sql).all()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()
    assert "$1" not in sql and "current_setting('connector.p1')" in sql
    nodes = list(
        _plan_nodes(
            explained[0]["Plan"]
            if isinstance(explained, list)
            else json.loads(explained)[0]["Plan"]
        )
    )
    scans = [n for n in nodes if n.get("Index Name") == f"{name}_updated_at"]
    assert scans, json.dumps(explained, indent=1)
    assert "current_setting" in scans[0].get("Index Cond", "")
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"]
    assert len(rows) == 144  # one day of ten-minute rows


def _plan_nodes(node: dict) -> Iterator[dict]:  # type: ignore[type-arg]
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def test_rechunk_gives_exact_sizes_and_pulls_lazily() -> None:
    pulled = []

    def batches() -> Iterator[pa.RecordBatch]:
        for n in (3, 5, 0, 4, 7, 1):
            pulled.append(n)
            yield pa.record_batch({"a": list(range(n))})

    chunks = rechunk(batches(), 6)
    assert next(chunks).num_rows == 6 and pulled == [3, 5]
    assert [c.num_rows for c in chunks] == [6, 6, 2]
    assert list(rechunk(iter(()), 6)) == []


def test_bound_values_become_typed_session_settings() -> None:
    t = table("t", column("at"), column("n"))
    aware = dt.datetime(2026, 10, 25, tzinfo=ZoneInfo("Europe/Amsterdam"))
    stmt = select(t.c.at).where(t.c.at >= aware, t.c.at < dt.datetime(2026, 10, 26), t.c.n >= 5)
    replaced, settings = bound_to_settings(stmt)
    assert settings == [
        ("connector.p1", "2026-10-25T00:00:00+02:00"),
        ("connector.p2", "2026-10-26T00:00:00"),
        ("connector.p3", "5"),
    ]
    from sqlalchemy.dialects.postgresql.base import PGDialect

    sql = str(replaced.compile(dialect=PGDialect(paramstyle="numeric_dollar")))
    assert "CAST(current_setting('connector.p1') AS TIMESTAMP WITH TIME ZONE)" in sql
    assert "CAST(current_setting('connector.p2') AS TIMESTAMP WITHOUT TIME ZONE)" in sql
    assert "CAST(current_setting('connector.p3') AS BIGINT)" in sql


def test_the_drivers_connection_comes_from_the_sqlalchemy_url() -> None:
    url = make_url(
        "postgresql+psycopg2://u%40x:p%27w%5Cd@db.example:6543/crm"
        "?sslmode=require&options=-c%20TimeZone%3DAsia/Tokyo"
    )
    assert libpq_conninfo(url) == (
        "host='db.example' port='6543' user='u@x' password='p\\'w\\\\d' dbname='crm' "
        "sslmode='require' options='-c TimeZone=Asia/Tokyo'"
    )
    assert sqlite_database(make_url("sqlite:///crm.db")) == "crm.db"
    assert sqlite_database(make_url("sqlite://")) == ":memory:"
    assert (
        sqlite_database(make_url("sqlite:///file:crm.db?mode=ro&uri=true")) == "file:crm.db?mode=ro"
    )
    assert arrow_driver("mysql+pymysql://u@h/db") is None
    assert arrow_driver("mssql+pyodbc://u@h/db") is None
    assert arrow_driver("postgres://u@h/db") is not None  # hosting services' spelling


@pytest.mark.parametrize(
    ("declared", "affinity"),
    [
        ("TEXT", "TEXT"),
        ("VARCHAR(40)", "TEXT"),
        ("nchar", "TEXT"),
        ("CLOB", "TEXT"),
        ("INTEGER", "INTEGER"),
        ("CHARINT", "INTEGER"),  # INT wins
        ("BLOB", "BLOB"),
        ("", "BLOB"),
        ("DOUBLE PRECISION", "REAL"),
        ("DATETIME", "NUMERIC"),
        ("STRING", "NUMERIC"),
    ],
)
def test_sqlite_affinity(declared: str, affinity: str) -> None:
    assert sqlite_affinity(declared) == affinity


def test_a_password_is_taken_out_of_a_drivers_text() -> None:
    url = "postgresql://u:p%40ss%20w@h/db"
    assert without_password("auth failed for p@ss w and p%40ss%20w", url) == (
        "auth failed for *** and ***"
    )
    assert without_password("nothing to hide", "postgresql://u@h/db") == "nothing to hide"
