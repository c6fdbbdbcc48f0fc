"""The Arrow reader (ADBC) against the SQLAlchemy reader: the same rows, the same text.

Each database gets a table of hostile values (NULLs before the first text, unicode, commas,
quotes and newlines, timestamps with and without a zone, decimals, integers beyond 32 and 53
bits, floats, booleans, dates); both readers read it through the same plan and their raw
chunks and mapped outputs must be equal. MariaDB has no Arrow reader: it keeps SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    insert,
)

from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources import SourceError, iter_source_chunks
from connector.sources.sql import sqlalchemy_tables
from connector.sources.sql_arrow import iter_arrow_tables
from connector.sources.sql_paths import arrow_driver
from connector.sources.sql_plan import SqlPlan
from connector.transform import map_chunk

TZ = ZoneInfo("Europe/Amsterdam")
DAY = "2026-11-19"
AMS = ZoneInfo("Europe/Amsterdam")
TEXTS = ['é,"quoted"\nnew line', "", "Zoë 東京 🍰", "a,b", "'single'", "tab\there", "%x&y=z+"]
DECIMALS = [Decimal("10.10"), Decimal("-0.0050"), Decimal("0"), Decimal("12345678901234.5678")]
FLOATS = [0.1 + 0.2, 1e20, 1.5e-7, 3.0, -0.0, 123456.789]
BIGS = [2**62 + 1, -(2**63) + 1, 2**53 + 1, 0, -1]
NULL_FIRST = 1_500  # SQLite's driver guesses a column's type from its first batch


def hostile_rows(n: int = 3_000) -> list[dict]:
    """Rows of DAY (and a few around it); ``name`` NULL in the first ``NULL_FIRST`` rows."""
    rows = []
    for i in range(n):
        at = dt.datetime(2026, 11, 19) + dt.timedelta(seconds=i * 17 % 86_400)
        if i % 50 == 0:  # outside the window, both sides
            at += dt.timedelta(days=1 if i % 100 else -1)
        rows.append(
            {
                "customer_id": f"c{i:05d}",
                "name": None if i < NULL_FIRST or i % 11 == 0 else TEXTS[i % len(TEXTS)],
                "ltv": None if i % 13 == 0 else DECIMALS[i % len(DECIMALS)],
                "big": None if i % 17 == 0 else BIGS[i % len(BIGS)] + i,
                "score": None if i % 7 == 0 else FLOATS[i % len(FLOATS)] * (i + 1),
                "active": None if i % 5 == 0 else bool(i % 2),
                "born": None if i % 3 == 0 else dt.date(1900 + i % 120, 1 + i % 12, 1 + i % 28),
                "seen_at": None
                if i % 9 == 0
                else dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC) + dt.timedelta(minutes=37 * i),
                "updated_at": at.replace(microsecond=(i * 1_234) % 1_000_000 if i % 4 else 0),
            }
        )
    return rows


def hostile_table(name: str) -> Table:
    return Table(
        name,
        MetaData(),
        Column("customer_id", String(40), primary_key=True),
        Column("name", Text),
        Column("ltv", Numeric(20, 4)),
        Column("big", BigInteger),
        Column("score", Float),
        Column("active", Boolean),
        Column("born", Date),
        Column("seen_at", DateTime(timezone=True)),
        Column("updated_at", DateTime, nullable=False),
    )


def mapping_for(url: str, source: str) -> object:
    return parse_mapping(
        f"""
name: crm
source: {{kind: sql, url: "{url}", {source}, cursor: updated_at}}
destination: target
identity: {{column: customer_id, type: thirdPartyId}}
params:
  name: name
  ltv: {{column: ltv, type: decimal, format: "0.00"}}
  big: big
  score: score
  active: {{column: active, type: bool}}
  born: {{column: born, type: date}}
  seenAt: {{column: seen_at, type: datetime, timezone: Europe/Amsterdam}}
  updated: updated_at
"""
    )


SOURCES = {
    "table": "table: {table}",
    "query": "query: \"select * from {table} where customer_id <> 'none'\", key: customer_id",
}


@pytest.fixture(params=["sqlite", "postgres"])
def arrow_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def hostile(arrow_url: str) -> Iterator[tuple[str, str]]:
    name = f"arrow_{uuid.uuid4().hex[:10]}"
    table = hostile_table(name)
    engine = create_engine(arrow_url)
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), hostile_rows())
    try:
        yield arrow_url, name
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()


def read_both(url: str, mapping: object, chunk_rows: int = 700) -> tuple[pa.Table, pa.Table]:
    """The window's rows read by each reader from one plan: (SQLAlchemy, Arrow)."""
    window = day_window(DAY, TZ)
    engine = create_engine(url)
    with engine.connect() as conn:
        plan = SqlPlan(conn, mapping, mapping.source)
        by_sqlalchemy = list(sqlalchemy_tables(conn, plan, window, chunk_rows))
    engine.dispose()
    driver = arrow_driver(url)
    assert driver is not None
    by_arrow = list(iter_arrow_tables(driver, url, plan, window, chunk_rows=chunk_rows))
    assert [t.num_rows for t in by_arrow] == [t.num_rows for t in by_sqlalchemy]
    return pa.concat_tables(by_sqlalchemy), pa.concat_tables(by_arrow)


@pytest.mark.parametrize("shape", ["table", "query"])
def test_both_readers_give_the_same_rows_and_text(hostile: tuple[str, str], shape: str) -> None:
    url, name = hostile
    mapping = mapping_for(url, SOURCES[shape].format(table=name))
    by_sqlalchemy, by_arrow = read_both(url, mapping)
    in_window = sum(1 for r in hostile_rows() if r["updated_at"].date() == dt.date(2026, 11, 19))
    assert by_arrow.num_rows == in_window
    assert by_arrow.schema == by_sqlalchemy.schema
    for column in by_sqlalchemy.column_names:  # column by column: a failure names it
        assert by_arrow.column(column).to_pylist() == by_sqlalchemy.column(column).to_pylist(), (
            column
        )
    assert by_arrow.equals(by_sqlalchemy)
    # every kind of value was there: NULLs after the first batch's, text, decimals, big ints
    names = by_arrow.column("name").to_pylist()
    assert names[0] is None and set(TEXTS) <= set(names)
    bigs = [int(v) for v in by_arrow.column("big").to_pylist() if v is not None]
    assert max(bigs) > 2**62 and min(bigs) < -(2**62)
    mapped_sqlalchemy, rejects_sqlalchemy = map_chunk(mapping, by_sqlalchemy)
    mapped_arrow, rejects_arrow = map_chunk(mapping, by_arrow)
    assert mapped_arrow.equals(mapped_sqlalchemy)
    assert rejects_arrow.equals(rejects_sqlalchemy)
    assert mapped_arrow.num_rows > 2_000


def test_the_extract_reads_postgres_and_sqlite_as_arrow(
    hostile: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, name = hostile
    driver = arrow_driver(url)
    assert driver is not None
    with caplog.at_level(logging.INFO, logger="connector.sources.sql"):
        chunks = list(
            iter_source_chunks(
                mapping_for(url, f"table: {name}"),
                DAY,
                day_window(DAY, TZ),
                chunk_rows=1_000,
                registry=None,
            )
        )
    assert [c.table.num_rows for c in chunks][:-1] == [1_000] * (len(chunks) - 1)
    assert f"({driver.package})" in caplog.text


def test_mariadb_keeps_the_sqlalchemy_reader(
    mariadb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert arrow_driver(mariadb_url) is None
    name = f"arrow_{uuid.uuid4().hex[:10]}"
    table = hostile_table(name)
    engine = create_engine(mariadb_url)
    table.metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), hostile_rows(200))
        with caplog.at_level(logging.INFO, logger="connector.sources.sql"):
            chunks = list(
                iter_source_chunks(
                    mapping_for(mariadb_url, f"table: {name}"),
                    DAY,
                    day_window(DAY, TZ),
                    chunk_rows=50,
                    registry=None,
                )
            )
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()
    assert sum(c.table.num_rows for c in chunks) == sum(
        1 for r in hostile_rows(200) if r["updated_at"].date() == dt.date(2026, 11, 19)
    )
    assert "(SQLAlchemy)" in caplog.text


def test_a_type_without_an_exact_rule_is_read_with_sqlalchemy(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A jsonb column: psycopg2 returns a dict (its text is Python's), the driver JSON."""
    name = f"arrow_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {name} (id text primary key, doc jsonb, updated_at timestamp)"
        )
        conn.exec_driver_sql(
            f"""insert into {name} values ('j1', '{{"a": [1, 2.5]}}', '2026-11-19 10:00')"""
        )
    try:
        mapping = parse_mapping(
            f"""
name: docs
source: {{kind: sql, url: "{postgres_url}", table: {name}, cursor: updated_at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{doc: doc}}
"""
        )
        with caplog.at_level(logging.INFO, logger="connector.sources.sql"):
            chunks = list(
                iter_source_chunks(mapping, DAY, day_window(DAY, TZ), chunk_rows=10, registry=None)
            )
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()
    assert chunks[0].table.column("doc").to_pylist() == ["{'a': [1, 2.5]}"]  # as before
    assert "column 'doc' is a PostgreSQL jsonb" in caplog.text
    assert "(SQLAlchemy)" in caplog.text


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=False),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.text(max_size=6),
            st.binary(max_size=4),
            st.none(),
        ),
        min_size=1,
        max_size=40,
    )
)
@example([-0.0, 0.0, 1.5])  # SQLite cannot report the sign of a zero: both readers write 0.0
def test_sqlite_any_stored_value_reads_alike(values: list) -> None:  # type: ignore[type-arg]
    """A column without a declared type holds any storage class; REALs are written as repr."""
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.db"
        con = sqlite3.connect(path)
        con.execute("create table t (id integer primary key, v, at text)")
        con.executemany(
            "insert into t values (?, ?, '2026-11-19 10:00:00')", list(enumerate(values))
        )
        con.commit()
        con.close()
        mapping = parse_mapping(
            f"""
name: any
source: {{kind: sql, url: "sqlite:///{path}", table: t, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{v: v}}
"""
        )
        by_sqlalchemy, by_arrow = read_both(f"sqlite:///{path}", mapping, chunk_rows=7)
    assert by_arrow.column("v").to_pylist() == by_sqlalchemy.column("v").to_pylist()


def test_the_password_stays_out_of_errors_and_logs(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection the server refuses, and a query that fails half-way through the COPY."""
    from sqlalchemy.engine import make_url

    secret = "S3cr3t-Pw"
    base = make_url(postgres_url).set(password=secret)
    name = f"arrow_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table {name} (id int primary key, n int, at timestamp)")
        conn.exec_driver_sql(
            f"insert into {name} select g, mod(g, 1000), '2026-11-19 10:00' "
            f"from generate_series(0, 200000) g"
        )
    failures: list[str] = []
    try:
        for url, source in [
            (base.set(database=f"missing_{name}"), f"table: {name}"),
            (
                base,
                f'query: "select id, at, 1 / (n - 999) as v from {name}", key: id',
            ),
        ]:
            shown = url.render_as_string(hide_password=False)
            mapping = parse_mapping(
                f"""
name: secret
source: {{kind: sql, url: "{shown}", {source}, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{n: v}}
"""
            )
            with (
                caplog.at_level(logging.DEBUG),
                pytest.raises(SourceError) as raised,
            ):
                list(
                    iter_source_chunks(
                        mapping, DAY, day_window(DAY, TZ), chunk_rows=10_000, registry=None
                    )
                )
            failures.append(str(raised.value))
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()
    assert "does not exist" in failures[0] and "division by zero" in failures[1]
    for text in [*failures, caplog.text]:
        assert secret not in text
    assert all(":***@" in failure for failure in failures)


def test_a_postgres_date_psycopg2_cannot_read_is_a_clear_error(postgres_url: str) -> None:
    name = f"arrow_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table {name} (id text primary key, due timestamp, at date)")
        conn.exec_driver_sql(f"insert into {name} values ('far', '10000-01-01', '2026-11-19')")
    try:
        mapping = parse_mapping(
            f"""
name: far
source: {{kind: sql, url: "{postgres_url}", table: {name}, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{due: due}}
"""
        )
        with pytest.raises(SourceError, match=r"column 'due' holds a timestamp outside the years"):
            list(iter_source_chunks(mapping, DAY, day_window(DAY, TZ), chunk_rows=5, registry=None))
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()


@pytest.mark.parametrize("session_zone", [None, "Asia/Kolkata", "America/St_Johns"])
def test_postgres_special_values_read_alike(postgres_url: str, session_zone: str | None) -> None:
    """Values of PostgreSQL's own: numeric NaN and infinities, infinite and far timestamps,
    uuids, padded chars, times (24:00 too), float specials; timestamptz in the session's
    zone (offsets of half an hour and more)."""
    name = f"arrow_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {name} (id int primary key, n numeric, f float8, ts timestamp,"
            f" tz timestamptz, d date, t time, u uuid, c char(5), updated_at timestamp)"
        )
        conn.exec_driver_sql(
            f"""insert into {name} values
            (1, 'NaN', 'NaN', 'infinity', 'infinity', 'infinity', '24:00', null, 'ab', '2026-11-19 01:00'),
            (2, 'Infinity', 'Infinity', '-infinity', '-infinity', '-infinity', '00:00:00.000001',
             'C88DE0AA-92AF-416E-9AEC-FB8B11DBBFAB', '', '2026-11-19 02:00'),
            (3, '-Infinity', '-Infinity', '0001-01-01 00:00', '1900-01-01 00:00+00', '0001-01-01',
             '23:59:59.999999', '00000000-0000-0000-0000-000000000000', 'abcde', '2026-11-19 03:00'),
            (4, '-0.000100', '1e-300', '9999-12-31 23:59:59.999999', '2026-03-29 01:30+00',
             '9999-12-31', '12:00', null, null, '2026-11-19 04:00'),
            (5, '123456789012345678901234567890.123456789', -0.0, '2026-10-25 02:30:00.5',
             '2026-10-25 00:30:00.5+00', '2026-10-25', '02:30:00.5', null, 'é', '2026-11-19 05:00')
            """
        )
    url = postgres_url
    if session_zone:
        url += ("&" if "?" in url else "?") + f"options=-c%20TimeZone%3D{session_zone}"
    try:
        mapping = parse_mapping(
            f"""
name: special
source: {{kind: sql, url: "{url}", table: {name}, cursor: updated_at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{n: n, f: f, ts: ts, tz: tz, d: d, t: t, u: u, c: c}}
"""
        )
        by_sqlalchemy, by_arrow = read_both(url, mapping, chunk_rows=2)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()
    assert by_arrow.num_rows == 5
    for column in by_sqlalchemy.column_names:
        assert by_arrow.column(column).to_pylist() == by_sqlalchemy.column(column).to_pylist(), (
            column
        )
    assert by_arrow.column("n").to_pylist()[:3] == ["NaN", "Infinity", "-Infinity"]


def test_sqlite_columns_null_through_the_first_batch_read_alike(tmp_path: Path) -> None:
    """The driver types a column by its first batch: NULL all through it, then text, numbers
    and bytes (a column typed int64 there would fail on the first text)."""
    import sqlite3

    from connector.sources.sql_arrow import SQLITE_BATCH_ROWS

    path = tmp_path / "late.db"
    con = sqlite3.connect(path)
    con.execute("create table t (id integer primary key, name text, v, at text)")
    late = [None, 'Zoë, "q"\n', 7, 2.5e-9, b"\xff\x00", 2**62, "", 1e16]
    con.executemany(
        "insert into t values (?, ?, ?, '2026-11-19 10:00:00')",
        [
            (i, *(2 * [late[i % len(late)]] if i > SQLITE_BATCH_ROWS + 10 else (None, None)))
            for i in range(SQLITE_BATCH_ROWS + 200)
        ],
    )
    con.commit()
    con.close()
    url = f"sqlite:///{path}"
    mapping = parse_mapping(
        f"""
name: late
source: {{kind: sql, url: "{url}", table: t, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{name: name, v: v}}
"""
    )
    by_sqlalchemy, by_arrow = read_both(url, mapping, chunk_rows=10_000)
    assert by_arrow.equals(by_sqlalchemy)
    assert set(by_arrow.column("v").to_pylist()[-len(late) :]) == {
        None,
        'Zoë, "q"\n',
        "7",
        "2.5e-09",
        "\\xff\x00",
        str(2**62),
        "",
        "1e+16",
    }
