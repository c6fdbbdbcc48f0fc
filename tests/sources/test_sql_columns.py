"""A SQL read selects only the columns the mapping uses (cursor, key, identity, params).

Each database gets a table whose mapped columns are plain, beside unmapped ones that a read
could not survive: on SQLite a ``JSON`` column holding no JSON (SQLAlchemy's reader fails to
decode it, the Arrow reader has no text rule for it); on PostgreSQL an ``interval`` (no Arrow
text rule) and a timestamp past the year 9999 (neither psycopg2 nor the Arrow reader can
write it); on MariaDB a ``json`` column, harmless, which must not reach the raw chunk. A view
adds a column whose every evaluation raises an error in the database. The table, the view
and a query over the table are read by every reader of the dialect; each read must give the
mapped rows as before and not fail.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import create_engine

from connector.columns import SEQ, SOURCE_REF
from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.settings import Settings
from connector.sources import SourceError, iter_source_chunks
from connector.sources.probe import probe
from connector.sources.sql import iter_sql_identities
from connector.transform import map_chunk
from tests.sources.test_sql_arrow import DAY, TZ

ROWS = [("c1", "one@example.com", "2026-11-19 08:00:00"), ("c2", None, "2026-11-19 09:30:00")]
OUTSIDE = ("c3", "three@example.com", "2026-11-20 08:00:00")  # the next day: not read


@dataclass(frozen=True)
class Source:
    """A database with a table ``<name>_t`` and a view ``<name>_v`` over it (module doc)."""

    url: str
    name: str
    boom: str  # an SQL expression on ``t`` that raises an error whenever it is evaluated


def _sqlite(name: str) -> tuple[list[str], str]:
    return [
        f"create table {name}_t (id varchar(20) primary key, email varchar(100),"
        f" updated_at timestamp not null, doc JSON)",
        *(
            f"insert into {name}_t values ('{i}', {_lit(e)}, '{at}', '{{not json')"
            for i, e, at in [*ROWS, OUTSIDE]
        ),
    ], "json_extract(t.id || '{', '$')"


def _postgres(name: str) -> tuple[list[str], str]:
    return [
        f"create table {name}_t (id varchar(20) primary key, email varchar(100),"
        f" updated_at timestamp not null, span interval, far timestamp)",
        *(
            f"insert into {name}_t values ('{i}', {_lit(e)}, '{at}', '1 day', '10000-01-01')"
            for i, e, at in [*ROWS, OUTSIDE]
        ),
        # stable: a view's volatile column is evaluated even when no one selects it
        f"create function {name}_boom(x text) returns int language plpgsql stable as "
        f"$$ begin raise exception 'unmapped column read'; end $$",
    ], f"{name}_boom(t.id)"


def _mariadb(name: str) -> tuple[list[str], str]:
    return [
        f"create table {name}_t (id varchar(20) primary key, email varchar(100),"
        f" updated_at datetime not null, doc json)",
        *(
            f"insert into {name}_t values ('{i}', {_lit(e)}, '{at}', '{{}}')"
            for i, e, at in [*ROWS, OUTSIDE]
        ),
        f"create function {name}_boom(x varchar(20)) returns int not deterministic begin "
        f"signal sqlstate '45000' set message_text = 'unmapped column read'; return 0; end",
    ], f"{name}_boom(t.id)"


def _lit(value: str | None) -> str:
    return "null" if value is None else f"'{value}'"


SETUPS = {"sqlite": _sqlite, "postgres": _postgres, "mariadb": _mariadb}


@pytest.fixture(
    params=[
        ("sqlite", "arrow"),
        ("sqlite", "sqlalchemy"),
        ("postgres", "arrow"),
        ("postgres", "sqlalchemy"),
        ("mariadb", "sqlalchemy"),
    ],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """(database, URL, reader) of each database and each of its readers."""
    dialect, reader = request.param
    if dialect == "sqlite":
        return dialect, f"sqlite:///{tmp_path / 'crm.db'}", reader
    return dialect, request.getfixturevalue(f"{dialect}_url"), reader


@pytest.fixture
def source(database: tuple[str, str, str]) -> Iterator[Source]:
    dialect, url, _ = database
    name = f"cols_{uuid.uuid4().hex[:10]}"
    statements, boom = SETUPS[dialect](name)
    statements.append(f"create view {name}_v as select t.*, {boom} as boom from {name}_t t")
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    try:
        yield Source(url, name, boom)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop view {name}_v")
            conn.exec_driver_sql(f"drop table {name}_t")
            if dialect != "sqlite":
                conn.exec_driver_sql(f"drop function {name}_boom")
        engine.dispose()


def mapping_of(src: Source, shape: str, reader: str) -> object:
    if shape == "table":
        where = f"table: {src.name}_t"
    elif shape == "view":
        where = f"table: {src.name}_v, key: id"  # a view has no primary key of its own
    else:
        where = f'query: "select t.*, {src.boom} as boom from {src.name}_t t", key: id'
    return parse_mapping(
        f"""
name: crm
source: {{kind: sql, url: "{src.url}", {where}, cursor: updated_at, reader: {reader}}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{email: email}}
"""
    )


@pytest.mark.parametrize("shape", ["table", "view", "query"])
def test_only_the_mapped_columns_are_read(
    database: tuple[str, str, str], source: Source, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    *_, reader = database
    mapping = mapping_of(source, shape, reader)
    with caplog.at_level(logging.INFO, logger="connector.sources.sql"):
        chunks = list(
            iter_source_chunks(mapping, DAY, day_window(DAY, TZ), chunk_rows=10, registry=None)
        )
    # the reader asked for is the one that read (no fallback because of an unmapped column)
    assert ("(SQLAlchemy)" in caplog.text) == (reader == "sqlalchemy")
    raw = pa.concat_tables([c.table for c in chunks])
    assert raw.column_names == ["id", "email", "updated_at", SOURCE_REF, SEQ]
    assert raw.column("id").to_pylist() == [r[0] for r in ROWS]
    assert raw.column("email").to_pylist() == [r[1] for r in ROWS]
    label = mapping.name if shape == "query" else f"{source.name}_{shape[0]}"
    assert raw.column(SOURCE_REF).to_pylist() == [f"{label}:{r[0]}" for r in ROWS]
    mapped, rejects = map_chunk(mapping, raw)
    assert mapped.select(["_identity", "email"]).to_pylist() == [
        {"_identity": "c1", "email": "one@example.com"},
        {"_identity": "c2", "email": None},
    ]
    assert rejects.num_rows == 0


def test_probe_and_identities_ignore_the_unmapped_columns(
    database: tuple[str, str, str], source: Source
) -> None:
    *_, reader = database
    view = mapping_of(source, "view", reader)
    assert probe(view, Settings()) == []
    identities = pa.concat_arrays(list(iter_sql_identities(view)))
    assert sorted(identities.to_pylist()) == ["c1", "c2", "c3"]
    # a column that is not there is still named beside every column the source has
    missing = parse_mapping(
        f"""
name: crm
source: {{kind: sql, url: "{source.url}", table: {source.name}_v, key: id, cursor: updated_at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{email: mail}}
"""
    )
    problems = probe(missing, Settings())
    assert len(problems) == 1 and "params.email: column 'mail' not in table" in problems[0]
    assert "(have: id, email, updated_at, " in problems[0] and problems[0].endswith(", boom)")
    with pytest.raises(SourceError, match=r"column 'mail' not in table"):
        list(iter_source_chunks(missing, DAY, day_window(DAY, TZ), chunk_rows=10, registry=None))
