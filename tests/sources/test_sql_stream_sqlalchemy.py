"""The SQLAlchemy reader streams too: a 1M-row MariaDB table comes in bounded chunks while
the server is still sending the rest (an unbuffered cursor, not the whole result first)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources import iter_source_chunks
from tests.sources.test_sql_arrow_stream import CHUNK, DAY, MILLION, UTC


def _running(url: str, table: str) -> list[tuple[str, str]]:
    """The server's statements over ``table`` still running, with their state."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT COMMAND, COALESCE(STATE, '') FROM information_schema.PROCESSLIST "
                    "WHERE INFO LIKE :pattern AND INFO NOT LIKE '%PROCESSLIST%' "
                    "AND ID <> CONNECTION_ID()"
                ),
                {"pattern": f"%{table}%"},
            ).all()
    finally:
        engine.dispose()
    return [(str(c), str(s)) for c, s in rows]


@pytest.mark.slow
@pytest.mark.mariadb
def test_mariadb_million_rows_come_in_bounded_chunks_while_the_server_streams(
    mariadb_url: str,
) -> None:
    name = f"big_{uuid.uuid4().hex[:10]}"
    engine = create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"create table {name} (id bigint primary key, name text, updated_at datetime(3), "
                f"index (updated_at))"
            )
        )
        conn.execute(  # MariaDB's sequence engine: the numbers 0 .. 999,999 as a table
            text(
                f"insert into {name} select seq, concat(repeat('x', 80), seq), "
                f"timestamp '2026-11-19 00:00:00' + interval seq * 86000 microsecond "
                f"from seq_0_to_{MILLION - 1}"
            )
        )
    mapping = parse_mapping(
        f"""
name: big
source: {{kind: sql, url: "{mariadb_url}", table: {name}, cursor: updated_at}}
destination: target
identity: {{column: id, type: thirdPartyId}}
params: {{name: name}}
"""
    )
    try:
        chunks = iter_source_chunks(
            mapping, DAY, day_window(DAY, UTC), chunk_rows=CHUNK, registry=None
        )
        first = next(chunks)
        # the first chunk is here and the server is still at the statement: it streams
        running = _running(mariadb_url, name)
        sizes = [first.table.num_rows] + [c.table.num_rows for c in chunks]
        after = _running(mariadb_url, name)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"drop table {name}"))
        engine.dispose()
    assert sum(sizes) == MILLION and sizes == [CHUNK] * (MILLION // CHUNK)
    assert [command for command, _ in running] == ["Query"], running
    assert after == []  # and done once every chunk was read
