"""SQLite cursors read in the order of their stored text (``sql_window.sqlite_text_order``).

Where every cursor value around the window is naive text of one plain form, the Arrow reader
selects the window as a range of that text, in its order, instead of computing each row's
instant and sorting: it must give the very rows, in the very order, the SQLAlchemy reader
gets from the computed instants; and where the values do not allow it, the check must say so.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources.sql import sqlalchemy_tables
from connector.sources.sql_arrow import iter_arrow_tables
from connector.sources.sql_paths import arrow_driver
from connector.sources.sql_plan import SqlPlan
from connector.sources.sql_select_sqlite import in_text_order, sqlite_kinds, text_order_statement

AMS = ZoneInfo("Europe/Amsterdam")
DAY = "2026-11-19"


def make_db(path: Path, key: str, values: list[tuple[object, object]]) -> str:
    """A table ``crm`` of (key, cursor text) rows, indexed on the cursor; its URL."""
    con = sqlite3.connect(path)
    con.execute(f"create table crm (id {key} primary key, at datetime, note text)")
    con.executemany("insert into crm values (?, ?, 'n' || ?)", [(k, v, k) for k, v in values])
    con.execute("create index crm_at on crm (at)")
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def mapping_for(url: str, source: str = "table: crm") -> object:
    return parse_mapping(
        f"""
name: crm
source: {{kind: sql, url: "{url}", {source}, cursor: at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{at: at, note: note}}
"""
    )


def read_both(
    url: str, mapping: object, day: str = DAY, tz: ZoneInfo = AMS
) -> tuple[pa.Table, pa.Table, bool]:
    """The window's rows from each reader (SQLAlchemy, Arrow), and whether the text order
    holds for it."""
    window = day_window(day, tz)
    engine = create_engine(url)
    with engine.connect() as conn:
        plan = SqlPlan(conn, mapping, mapping.source)
        by_sqlalchemy = list(sqlalchemy_tables(conn, plan, window, 5))
        check = plan.text_order(window)
        holds = bool(check is not None and conn.execute(check).scalar())
    engine.dispose()
    driver = arrow_driver(url)
    assert driver is not None
    by_arrow = list(iter_arrow_tables(driver, url, plan, window, chunk_rows=5))
    assert [t.num_rows for t in by_arrow] == [t.num_rows for t in by_sqlalchemy]
    return _concat(by_sqlalchemy), _concat(by_arrow), holds


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if tables else pa.table({})


def at(day: str, seconds: int) -> str:
    return (dt.datetime.fromisoformat(day) + dt.timedelta(seconds=seconds)).isoformat(sep=" ")


def test_plain_text_is_read_as_a_range_in_text_order(tmp_path: Path) -> None:
    """Ties on the cursor come by key; the days around the window stay out."""
    values: list[tuple[object, object]] = [(1000 - i, at(DAY, i % 50 * 1700)) for i in range(200)]
    around = [at(day, 3600 * h) for day in ("2026-11-18", "2026-11-20") for h in (0, 23)]
    values += [(5000 + i, v) for i, v in enumerate(around)]
    values += [(6000, "2026-11-19 00:00:00"), (6001, "2026-11-19 23:59:59")]
    url = make_db(tmp_path / "plain.db", "integer", values)
    by_sqlalchemy, by_arrow, holds = read_both(url, mapping_for(url))
    assert holds
    assert by_arrow.equals(by_sqlalchemy)
    assert by_arrow.num_rows == 202
    cursors = by_arrow.column("at").to_pylist()
    keys = [int(k) for k in by_arrow.column("id").to_pylist()]
    assert list(zip(cursors, keys, strict=True)) == sorted(zip(cursors, keys, strict=True))


@pytest.mark.parametrize(
    ("odd", "why"),
    [
        ("2026-11-19T12:00:00", "a second form (T)"),
        ("2026-11-19 12:00", "a second form (no seconds)"),
        ("2026-11-18T23:30:00Z", "an offset, outside the text range but in the window"),
        ("2026-11-19 00:30:00+02:00", "an offset, in the text range but not the window"),
        ("2026-11-18 24:00:00", "24:00, the next day's midnight"),
        ("2026-11-19 10:00:00.5", "a fraction"),
        ("2026-11-20 x", "text SQLite cannot read"),
    ],
)
def test_any_other_value_around_the_window_keeps_the_computed_order(
    tmp_path: Path, odd: str, why: str
) -> None:
    values: list[tuple[object, object]] = [(i, at(DAY, i * 600)) for i in range(100)]
    values.append((100, odd))
    url = make_db(tmp_path / "odd.db", "integer", values)
    by_sqlalchemy, by_arrow, holds = read_both(url, mapping_for(url))
    assert not holds, why
    assert by_arrow.equals(by_sqlalchemy)


def test_a_day_past_the_months_end_keeps_the_computed_order(tmp_path: Path) -> None:
    """SQLite reads 2026-11-31 as 2026-12-01: in the text range of 2026-11-30, not its day."""
    values: list[tuple[object, object]] = [(i, at("2026-11-30", i * 900)) for i in range(96)]
    values.append((96, "2026-11-31 10:00:00"))
    url = make_db(tmp_path / "rollover.db", "integer", values)
    for day, rows in (("2026-11-30", 96), ("2026-12-01", 1)):
        by_sqlalchemy, by_arrow, holds = read_both(url, mapping_for(url), day=day)
        assert not holds
        assert by_arrow.equals(by_sqlalchemy)
        assert by_arrow.num_rows == rows


@pytest.mark.parametrize(
    ("form", "holds"),
    [
        ("%Y-%m-%d", True),
        ("%Y-%m-%dT%H:%M", True),
        ("%Y-%m-%d %H:%M:%S", True),
        ("%Y-%m-%dT%H:%M:%S.{ms:03d}", True),
        ("%Y-%m-%d %H:%M:%S.{ms:03d}000", True),  # SQLAlchemy's DateTime, whole milliseconds
        ("%Y-%m-%d %H:%M:%S.{ms:03d}123", False),  # SQLite rounds to the millisecond
    ],
)
def test_each_plain_form(tmp_path: Path, form: str, holds: bool) -> None:
    start = dt.datetime(2026, 11, 18, 22)
    values: list[tuple[object, object]] = []
    for i in range(150):
        moment = start + dt.timedelta(seconds=i * 997)
        values.append((i, moment.strftime(form.format(ms=i * 7 % 1000))))
    url = make_db(tmp_path / "forms.db", "integer", values)
    by_sqlalchemy, by_arrow, found = read_both(url, mapping_for(url))
    assert found is holds
    assert by_arrow.equals(by_sqlalchemy)
    assert by_arrow.num_rows > 0


def test_a_window_near_a_change_of_offset_keeps_the_computed_order(tmp_path: Path) -> None:
    """2026-03-29 02:30 does not exist in Amsterdam: text order is no longer time order."""
    values = [(i, at("2026-03-29", i * 900)) for i in range(96)]
    url = make_db(tmp_path / "dst.db", "integer", values)
    by_sqlalchemy, by_arrow, holds = read_both(url, mapping_for(url), day="2026-03-29")
    assert not holds
    assert by_arrow.equals(by_sqlalchemy)
    by_sqlalchemy, by_arrow, holds = read_both(
        url, mapping_for(url), day="2026-03-29", tz=ZoneInfo("UTC")
    )
    assert holds
    assert by_arrow.equals(by_sqlalchemy)


@pytest.mark.parametrize("odd", [None, "2026-11-19T12:00:00"])
def test_a_nocase_text_key_orders_alike(tmp_path: Path, odd: str | None) -> None:
    """Ties on the cursor are ordered by the key's own collation, on both paths."""
    keys = ["b", "A", "a2", "B2", "c", "C1"]
    values: list[tuple[object, object]] = [(k, "2026-11-19 10:00:00") for k in keys]
    if odd:
        values.append(("z", odd))
    url = make_db(tmp_path / "nocase.db", "text collate nocase", values)
    by_sqlalchemy, by_arrow, holds = read_both(url, mapping_for(url))
    assert holds is (odd is None)
    assert by_arrow.equals(by_sqlalchemy)
    assert by_arrow.column("id").to_pylist()[:6] == ["A", "a2", "b", "B2", "c", "C1"]


def test_an_integer_key_that_is_no_rowid_is_read_as_any_value(tmp_path: Path) -> None:
    """``INTEGER PRIMARY KEY DESC`` is a column of its own, which may hold text."""
    path = tmp_path / "desc.db"
    con = sqlite3.connect(path)
    con.execute("create table crm (id integer primary key desc, at text, note text)")
    con.executemany(
        "insert into crm values (?, ?, 'n')",
        [(i if i % 3 else f"k{i}", at(DAY, i * 60)) for i in range(50)],
    )
    con.commit()
    con.close()
    url = f"sqlite:///{path}"
    mapping = mapping_for(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        plan = SqlPlan(conn, mapping, mapping.source)
    engine.dispose()
    assert plan.rowid is None
    assert in_text_order(plan, sqlite_kinds(plan)) is None  # its order is the stored value's
    by_sqlalchemy, by_arrow, _ = read_both(url, mapping)
    assert by_arrow.equals(by_sqlalchemy)
    assert "k3" in by_arrow.column("id").to_pylist()


def test_the_text_order_comes_from_the_index_without_a_sort(tmp_path: Path) -> None:
    url = make_db(tmp_path / "plan.db", "integer", [(i, at(DAY, i)) for i in range(10)])
    mapping = mapping_for(url)
    window = day_window(DAY, AMS)
    engine = create_engine(url)
    with engine.connect() as conn:
        plan = SqlPlan(conn, mapping, mapping.source)
        ordered = in_text_order(plan, sqlite_kinds(plan))
        assert ordered is not None
        statement = text_order_statement(plan, window, ordered)
        compiled = statement.compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        params = tuple(compiled.params[k] for k in compiled.positiontup or ())
        steps = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)]
    engine.dispose()
    assert any("USING INDEX crm_at" in step for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps


# Any mix of cursor texts around the window, any keys: the two readers agree.
_FORMS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
_ODD = st.sampled_from(
    [
        "2026-11-19T01:00:00+02:00",
        "2026-11-18T23:30:00Z",
        "2026-11-18 24:00:00",
        "2026-11-19 10:00:00.0005",
        "2026-11-19 10:00:00.000",
        "2026-11-31 10:00:00",
        "2026-11-19 9:00:00",
        "2026-11-19",
        "garbage",
    ]
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    form=st.sampled_from(_FORMS),
    offsets=st.lists(st.integers(-2 * 86_400, 3 * 86_400), min_size=1, max_size=40),
    odd=st.lists(_ODD, max_size=2),
    text_key=st.booleans(),
)
@example(form=_FORMS[0], offsets=[0, 0, 86_399, 86_400, -1], odd=[], text_key=False)
def test_any_cursor_texts_read_alike(
    tmp_path_factory: pytest.TempPathFactory,
    form: str,
    offsets: list[int],
    odd: list[str],
    text_key: bool,
) -> None:
    start = dt.datetime.fromisoformat(DAY)
    texts = [(start + dt.timedelta(seconds=s)).strftime(form) for s in offsets] + odd
    values: list[tuple[object, object]] = [
        (f"k{(i * 37) % 101:03d}" if text_key else (i * 37) % 101, v) for i, v in enumerate(texts)
    ]
    url = make_db(
        tmp_path_factory.mktemp("any") / "any.db", "text" if text_key else "integer", values
    )
    by_sqlalchemy, by_arrow, holds = read_both(url, mapping_for(url))
    assert by_arrow.equals(by_sqlalchemy)
    if not odd:
        assert holds
