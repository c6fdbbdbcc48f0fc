"""`source.reader`: the data engineer's switch between the Arrow and SQLAlchemy readers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
from sqlalchemy import create_engine, insert

from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.settings import Settings
from connector.sources import SourceError, iter_source_chunks
from connector.sources.probe import probe
from tests.sources.test_sql_arrow import DAY, TZ, hostile_rows, hostile_table, mapping_for


def with_reader(url: str, table: str, reader: str) -> object:
    return mapping_for(url, f"table: {table}, reader: {reader}")


def read(mapping: object) -> pa.Table:
    chunks = iter_source_chunks(mapping, DAY, day_window(DAY, TZ), chunk_rows=500, registry=None)
    return pa.concat_tables([c.table for c in chunks])


@pytest.fixture
def postgres_table(postgres_url: str) -> Iterator[str]:
    name = f"reader_{uuid.uuid4().hex[:10]}"
    table = hostile_table(name)
    engine = create_engine(postgres_url)
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), hostile_rows(1_200))
    try:
        yield name
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()


def test_reader_sqlalchemy_reads_postgres_without_arrow_and_gives_the_same_rows(
    postgres_url: str, postgres_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="connector.sources.sql"):
        forced = read(with_reader(postgres_url, postgres_table, "sqlalchemy"))
    assert "(SQLAlchemy)" in caplog.text and "adbc-driver-postgresql" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="connector.sources.sql"):
        auto = read(with_reader(postgres_url, postgres_table, "auto"))
    assert "(adbc-driver-postgresql)" in caplog.text
    assert forced.num_rows > 0 and forced.equals(auto)


def test_reader_arrow_on_a_dialect_without_one_is_an_error_naming_the_setting(
    mariadb_url: str,
) -> None:
    mapping = with_reader(mariadb_url, "no_such_table", "arrow")
    with pytest.raises(SourceError, match=r"crm: source.reader: arrow, but mysql has no Arrow"):
        read(mapping)
    problems = probe(mapping, Settings())
    assert (
        problems and "source.reader: arrow" in problems[0] and "postgresql, sqlite" in problems[0]
    )


def test_reader_arrow_refuses_a_column_without_an_exact_rule_instead_of_falling_back(
    postgres_url: str,
) -> None:
    name = f"reader_{uuid.uuid4().hex[:10]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {name} (id text primary key, doc jsonb, updated_at timestamp)"
        )
        conn.exec_driver_sql(f"insert into {name} values ('j1', '{{}}', '2026-11-19 10:00')")
    mapping = parse_mapping(
        f"""
name: docs
source: {{kind: sql, url: "{postgres_url}", table: {name}, cursor: updated_at, reader: arrow}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{doc: doc}}
"""
    )
    try:
        with pytest.raises(
            SourceError, match=r"docs: source.reader: arrow, but column 'doc' is a PostgreSQL jsonb"
        ):
            read(mapping)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table {name}")
        engine.dispose()


def test_an_unknown_reader_is_a_mapping_error_naming_the_field() -> None:
    with pytest.raises(Exception, match=r"reader"):
        mapping_for("sqlite:///x.db", "table: t, reader: duckdb")
