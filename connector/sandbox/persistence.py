"""Optional SQLite persistence (``--data DIR``): the in-memory stores write through to it."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
create table if not exists target_profiles (
    client text not null, id_column text not null, id text not null, attrs text not null,
    primary key (client, id_column, id));
create table if not exists target_batches (
    batch_id text primary key, client text not null, data text not null);
create table if not exists copernica_databases (
    id integer primary key, name text not null unique, fields text);
create table if not exists copernica_profiles (
    id integer primary key, database_id integer not null, data text not null);
"""


class Persistence:
    """One SQLite file, ``DIR/sandbox.sqlite3``, shared by both stores (serialised by a lock)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "sandbox.sqlite3"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("pragma journal_mode=wal")
        self._conn.execute("pragma synchronous=normal")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self._lock:
            self._conn.execute("begin")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("rollback")
                raise
            self._conn.execute("commit")

    def _read(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql).fetchall()

    # Target
    def save_profiles(
        self, client: str, id_column: str, profiles: Iterable[tuple[str, dict[str, Any]]]
    ) -> None:
        self._write(
            "insert or replace into target_profiles values (?, ?, ?, ?)",
            ((client, id_column, pid, json.dumps(attrs)) for pid, attrs in profiles),
        )

    def load_profiles(self) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        for client, id_column, pid, attrs in self._read("select * from target_profiles"):
            yield client, id_column, pid, json.loads(attrs)

    def save_batch(self, batch_id: str, client: str, data: dict[str, Any]) -> None:
        self._write(
            "insert or replace into target_batches values (?, ?, ?)",
            [(batch_id, client, json.dumps(data))],
        )

    def load_batches(self) -> list[dict[str, Any]]:
        rows = self._read("select data from target_batches order by rowid")
        return [json.loads(data) for (data,) in rows]

    # Copernica
    def save_database(self, db_id: int, name: str, fields: list[str] | None) -> None:
        self._write(
            "insert or replace into copernica_databases values (?, ?, ?)",
            [(db_id, name, None if fields is None else json.dumps(fields))],
        )

    def load_databases(self) -> list[tuple[int, str, list[str] | None]]:
        rows = self._read("select id, name, fields from copernica_databases order by id")
        return [(i, n, None if f is None else json.loads(f)) for i, n, f in rows]

    def save_copernica_profiles(self, profiles: Iterable[tuple[int, int, dict[str, Any]]]) -> None:
        self._write(
            "insert or replace into copernica_profiles values (?, ?, ?)",
            ((pid, db, json.dumps(data)) for pid, db, data in profiles),
        )

    def load_copernica_profiles(self) -> list[tuple[int, int, dict[str, Any]]]:
        rows = self._read("select id, database_id, data from copernica_profiles order by id")
        return [(pid, db, json.loads(data)) for pid, db, data in rows]
