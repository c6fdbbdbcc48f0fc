"""Cursor time zones: which partition day a SQL row belongs to (``docs/sources.md``).

CONNECTOR_TIMEZONE is Europe/Amsterdam: 2026-03-29 has 23 hours (02:00 -> 03:00),
2026-10-25 has 25 hours (03:00 -> 02:00). An aware cursor (timestamptz, MariaDB TIMESTAMP,
text with ``Z`` or an offset) is an instant; a naive one is local time in that zone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.settings import Settings
from connector.sources import iter_source_chunks

UTC = dt.UTC
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> ZoneInfo:
    """The zone the pipeline builds its windows in (settings.tz)."""
    monkeypatch.setenv("CONNECTOR_TIMEZONE", "Europe/Amsterdam")
    return Settings().tz


def mapping_for(url: str, kind: str, table: str) -> object:
    where = (
        f"table: {table}" if kind == "table" else f'query: "select id, at from {table}", key: id'
    )
    return parse_mapping(
        f"""
name: tzs
source: {{kind: sql, url: "{url}", {where}, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{at: at}}
"""
    )


def ids_by_day(mapping: object, days: list[str], tz: ZoneInfo) -> dict[str, list[str]]:
    """Each partition day's identities, in the order read (the real extract path)."""
    got: dict[str, list[str]] = {}
    for day in days:
        chunks = iter_source_chunks(mapping, day, day_window(day, tz), chunk_rows=7, registry=None)
        got[day] = [i for c in chunks for i in c.table.column("id").to_pylist()]
    return got


def expected_by_day(rows: list[tuple[str, object, str]], days: list[str]) -> dict[str, list[str]]:
    return {day: sorted(i for i, _, d in rows if d == day) for day in days}


def sorted_days(got: dict[str, list[str]]) -> dict[str, list[str]]:
    return {day: sorted(ids) for day, ids in got.items()}


# (identity, stored value, its partition day in Europe/Amsterdam)
SQLITE_TEXT = [
    # around an ordinary midnight (CET, +01:00)
    ("w-date", "2026-11-18", "2026-11-18"),
    ("w-space", "2026-11-18 10:00:00", "2026-11-18"),
    ("w-t", "2026-11-18T10:00:00", "2026-11-18"),
    ("w-frac", "2026-11-18 23:59:59.999", "2026-11-18"),
    ("w-last-z", "2026-11-18T22:59:59Z", "2026-11-18"),
    ("w-first-z", "2026-11-18T23:00:00Z", "2026-11-19"),
    ("w-z", "2026-11-18T23:30:00Z", "2026-11-19"),
    ("w-plus1", "2026-11-19T00:30:00+01:00", "2026-11-19"),
    ("w-minus5", "2026-11-18T18:30:00-05:00", "2026-11-19"),
    ("w-space-offset", "2026-11-19 09:00:00 +09:00", "2026-11-19"),
    ("w-next", "2026-11-19T00:00:00", "2026-11-19"),
    # SQLite's date functions cannot read "+0200": compared as text, as a local date
    ("w-unreadable", "2026-11-18T23:30:00+0200", "2026-11-18"),
    # the 25-hour day (2026-10-25: CEST +02:00 until 01:00Z, then CET +01:00)
    ("f-naive-last", "2026-10-24 23:59:59", "2026-10-24"),
    ("f-z-last", "2026-10-24T21:59:59Z", "2026-10-24"),
    ("f-z-first", "2026-10-24T22:00:00Z", "2026-10-25"),
    ("f-z", "2026-10-24T23:30:00Z", "2026-10-25"),
    ("f-plus2", "2026-10-25T00:30:00+02:00", "2026-10-25"),
    ("f-date", "2026-10-25", "2026-10-25"),
    ("f-naive-twice", "2026-10-25T02:30:00", "2026-10-25"),
    ("f-first-0230", "2026-10-25T02:30:00+02:00", "2026-10-25"),
    ("f-second-0230", "2026-10-25T02:30:00+01:00", "2026-10-25"),
    ("f-naive-end", "2026-10-25 23:59:59.999", "2026-10-25"),
    ("f-plus2-late", "2026-10-26T00:30:00+02:00", "2026-10-25"),
    ("f-z-next", "2026-10-25T23:00:00Z", "2026-10-26"),
    ("f-naive-next", "2026-10-26T00:00:00", "2026-10-26"),
    # the 23-hour day (2026-03-29: CET +01:00 until 01:00Z, then CEST +02:00)
    ("s-naive-last", "2026-03-28T23:59:59", "2026-03-28"),
    ("s-z-last", "2026-03-28T22:59:59Z", "2026-03-28"),
    ("s-z-first", "2026-03-28T23:00:00Z", "2026-03-29"),
    ("s-plus1", "2026-03-29T01:59:59+01:00", "2026-03-29"),
    ("s-plus2", "2026-03-29T03:00:00+02:00", "2026-03-29"),
    ("s-naive-gap", "2026-03-29 02:30:00", "2026-03-29"),
    ("s-z-end", "2026-03-29T21:59:59Z", "2026-03-29"),
    ("s-naive-end", "2026-03-29 23:59:59", "2026-03-29"),
    ("s-z-next", "2026-03-29T22:00:00Z", "2026-03-30"),
    ("s-date-next", "2026-03-30", "2026-03-30"),
]
SQLITE_DAYS = sorted({d for _, _, d in SQLITE_TEXT} | {"2026-03-27", "2026-10-27", "2026-11-20"})


@pytest.fixture
def sqlite_text_db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("create table crm (id text primary key, at datetime not null)")
        conn.execute(
            text("insert into crm values (:id, :at)"),
            [{"id": i, "at": v} for i, v, _ in SQLITE_TEXT],
        )
    engine.dispose()
    yield url


@pytest.mark.parametrize("kind", ["table", "query"])
def test_sqlite_text_with_and_without_offsets_in_one_column(
    sqlite_text_db: str, kind: str, tz: ZoneInfo
) -> None:
    got = ids_by_day(mapping_for(sqlite_text_db, kind, "crm"), SQLITE_DAYS, tz)
    assert sorted_days(got) == expected_by_day(SQLITE_TEXT, SQLITE_DAYS)


def test_sqlite_mixed_forms_are_read_in_time_order(sqlite_text_db: str, tz: ZoneInfo) -> None:
    """Later changes get a later ``_seq`` even when the text forms differ (ties: by key)."""
    got = ids_by_day(mapping_for(sqlite_text_db, "table", "crm"), ["2026-10-25"], tz)
    assert got["2026-10-25"] == [
        "f-date",  # 00:00+02
        "f-z-first",  # 00:00+02
        "f-plus2",  # 00:30+02
        "f-z",  # 01:30+02
        "f-first-0230",  # 02:30+02
        "f-naive-twice",  # 02:30, taken as the first 02:30 (+02)
        "f-second-0230",  # 02:30+01
        "f-plus2-late",  # 23:30+01
        "f-naive-end",  # 23:59:59.999+01
    ]


def test_sqlite_row_written_after_the_nightly_run_is_read_by_its_own_day(
    tmp_path: Path, tz: ZoneInfo
) -> None:
    """A UTC-stamped row of 00:30 local belongs to that day, not to the one already run."""
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("create table crm (id text primary key, at datetime not null)")
    mapping = mapping_for(url, "table", "crm")
    assert ids_by_day(mapping, ["2026-10-24"], tz) == {"2026-10-24": []}  # the nightly run
    with engine.begin() as conn:  # 2026-10-25 00:30 in Amsterdam, stamped in UTC
        conn.exec_driver_sql("insert into crm values ('late', '2026-10-24T22:30:00Z')")
    engine.dispose()
    assert ids_by_day(mapping, ["2026-10-24", "2026-10-25"], tz) == {
        "2026-10-24": [],
        "2026-10-25": ["late"],
    }


# Instants (aware) and local wall-clock times (naive) around the same midnights and DST days.
INSTANTS = [
    ("w-last", dt.datetime(2026, 11, 18, 22, 59, 59, tzinfo=UTC), "2026-11-18"),
    ("w-first", dt.datetime(2026, 11, 18, 23, 0, 0, tzinfo=UTC), "2026-11-19"),
    ("w-0030", dt.datetime(2026, 11, 19, 0, 30, tzinfo=AMS), "2026-11-19"),
    ("f-last", dt.datetime(2026, 10, 24, 21, 59, 59, tzinfo=UTC), "2026-10-24"),
    ("f-first", dt.datetime(2026, 10, 24, 22, 0, 0, tzinfo=UTC), "2026-10-25"),
    ("f-0030", dt.datetime(2026, 10, 25, 0, 30, tzinfo=AMS), "2026-10-25"),
    ("f-0230-first", dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25"),
    ("f-0230-second", dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25"),
    ("f-end", dt.datetime(2026, 10, 25, 22, 59, 59, tzinfo=UTC), "2026-10-25"),
    ("f-next", dt.datetime(2026, 10, 25, 23, 0, 0, tzinfo=UTC), "2026-10-26"),
    ("s-last", dt.datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC), "2026-03-28"),
    ("s-first", dt.datetime(2026, 3, 28, 23, 0, 0, tzinfo=UTC), "2026-03-29"),
    ("s-0130", dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "2026-03-29"),
    ("s-0300", dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29"),
    ("s-end", dt.datetime(2026, 3, 29, 21, 59, 59, tzinfo=UTC), "2026-03-29"),
    ("s-next", dt.datetime(2026, 3, 29, 22, 0, 0, tzinfo=UTC), "2026-03-30"),
]
WALL_TIMES = [
    ("w-last", dt.datetime(2026, 11, 18, 23, 59, 59), "2026-11-18"),
    ("w-first", dt.datetime(2026, 11, 19, 0, 0, 0), "2026-11-19"),
    ("w-0030", dt.datetime(2026, 11, 19, 0, 30), "2026-11-19"),
    ("f-last", dt.datetime(2026, 10, 24, 23, 59, 59), "2026-10-24"),
    ("f-first", dt.datetime(2026, 10, 25, 0, 0, 0), "2026-10-25"),
    ("f-0230-twice", dt.datetime(2026, 10, 25, 2, 30), "2026-10-25"),
    ("f-end", dt.datetime(2026, 10, 25, 23, 59, 59), "2026-10-25"),
    ("f-next", dt.datetime(2026, 10, 26, 0, 0, 0), "2026-10-26"),
    ("s-last", dt.datetime(2026, 3, 28, 23, 59, 59), "2026-03-28"),
    ("s-first", dt.datetime(2026, 3, 29, 0, 0, 0), "2026-03-29"),
    ("s-0230-gap", dt.datetime(2026, 3, 29, 2, 30), "2026-03-29"),
    ("s-end", dt.datetime(2026, 3, 29, 23, 59, 59), "2026-03-29"),
    ("s-next", dt.datetime(2026, 3, 30, 0, 0, 0), "2026-03-30"),
]
SERVER_DAYS = sorted(
    {d for _, _, d in INSTANTS + WALL_TIMES} | {"2026-03-27", "2026-10-23", "2026-11-20"}
)


@pytest.fixture
def table_name() -> str:
    return f"tzs_{uuid.uuid4().hex[:10]}"


def _with_session_zone(url: str, zone: str | None, option: str) -> str:
    """The URL whose connections start in session time zone ``zone`` (None: the server's)."""
    if zone is None:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}{quote(option, safe='=')}"


@pytest.mark.postgres
@pytest.mark.parametrize("session_zone", [None, "Asia/Tokyo"])
@pytest.mark.parametrize("kind", ["table", "query"])
@pytest.mark.parametrize("column_type", ["timestamptz", "timestamp"])
def test_postgres_cursor_day(
    postgres_url: str,
    table_name: str,
    kind: str,
    column_type: str,
    session_zone: str | None,
    tz: ZoneInfo,
) -> None:
    rows = INSTANTS if column_type == "timestamptz" else WALL_TIMES
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create table {table_name} (id text primary key, at {column_type})")
        conn.execute(
            text(f"insert into {table_name} values (:id, :at)"),
            [{"id": i, "at": v} for i, v, _ in rows],
        )
    try:
        url = _with_session_zone(postgres_url, session_zone, f"options=-c TimeZone={session_zone}")
        got = ids_by_day(mapping_for(url, kind, table_name), SERVER_DAYS, tz)
        assert sorted_days(got) == expected_by_day(rows, SERVER_DAYS)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {table_name}")
        engine.dispose()


@pytest.mark.mariadb
@pytest.mark.parametrize("session_zone", [None, "+09:00"])
@pytest.mark.parametrize("kind", ["table", "query"])
@pytest.mark.parametrize("column_type", ["TIMESTAMP", "DATETIME"])
def test_mariadb_cursor_day(
    mariadb_url: str,
    table_name: str,
    kind: str,
    column_type: str,
    session_zone: str | None,
    tz: ZoneInfo,
) -> None:
    rows = INSTANTS if column_type == "TIMESTAMP" else WALL_TIMES
    engine = create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {table_name} (id varchar(40) primary key, at {column_type} NULL)"
        )
        # a TIMESTAMP is an instant: written in a UTC session, as UTC wall-clock time
        conn.exec_driver_sql("set time_zone = '+00:00'")
        conn.execute(
            text(f"insert into {table_name} values (:id, :at)"),
            [
                {"id": i, "at": v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v}
                for i, v, _ in rows
            ],
        )
    try:
        url = _with_session_zone(
            mariadb_url, session_zone, f"init_command=SET time_zone='{session_zone}'"
        )
        got = ids_by_day(mapping_for(url, kind, table_name), SERVER_DAYS, tz)
        assert sorted_days(got) == expected_by_day(rows, SERVER_DAYS)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {table_name}")
        engine.dispose()
