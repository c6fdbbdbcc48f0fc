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
    pending text, pending_ts real,
    primary key (client, id_column, id));
create table if not exists target_batches (
    batch_id text primary key, client text not null, data text not null);
create table if not exists copernica_databases (
    id integer primary key, name text not null unique, fields text);
create table if not exists copernica_profiles (
    id integer primary key, database_id integer not null, data text not null);
"""

# Columns added to target_profiles after its first release (the v2 override rule's pending set).
_ADDED_COLUMNS = (("pending", "text"), ("pending_ts", "real"))

# (id, committed record, pending attributes or None, when they were set or None)
ProfileRow = tuple[str, dict[str, Any], dict[str, str] | None, float | None]


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


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
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a data dir written before a column existed up to date (its rows get NULL)."""
        have = {row[1] for row in self._conn.execute("pragma table_info(target_profiles)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in have:
                self._conn.execute(f"alter table target_profiles add column {name} {kind}")

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
    def save_profiles(self, client: str, id_column: str, profiles: Iterable[ProfileRow]) -> None:
        """Upsert profiles as (id, committed record, pending attributes or None, pending ts)."""
        self._write(
            "insert or replace into target_profiles"
            " (client, id_column, id, attrs, pending, pending_ts) values (?, ?, ?, ?, ?, ?)",
            (
                (client, id_column, pid, json.dumps(attrs), _json_or_null(pending), pending_ts)
                for pid, attrs, pending, pending_ts in profiles
            ),
        )

    def load_profiles(self) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """(client, id column, id, ``Profile`` keyword arguments) for every stored profile."""
        rows = self._read(
            "select client, id_column, id, attrs, pending, pending_ts from target_profiles"
        )
        for client, id_column, pid, attrs, pending, pending_ts in rows:
            record = json.loads(attrs)
            if pending is not None:
                record["pending"] = json.loads(pending)
                record["pending_ts"] = pending_ts
            yield client, id_column, pid, record

    def save_batch(self, batch_id: str, client: str, data: dict[str, Any]) -> None:
        self._write(
            "insert or replace into target_batches values (?, ?, ?)",
            [(batch_id, client, json.dumps(data))],
        )

    def load_batches(self) -> list[dict[str, Any]]:
        rows = self._read("select data from target_batches order by rowid")
        return [json.loads(data) for (data,) in rows]

    # Copernica
    def save_database(self, db_id: int, name: str, declared: object) -> None:
        """A database and its declaration (JSON: ``copernica_store`` reads it back)."""
        self._write(
            "insert or replace into copernica_databases values (?, ?, ?)",
            [(db_id, name, None if declared is None else json.dumps(declared))],
        )

    def clear_copernica(self) -> None:
        """Forget every Copernica database and profile (the admin reset)."""
        self._write("delete from copernica_profiles", [()])
        self._write("delete from copernica_databases", [()])

    def load_databases(self) -> list[tuple[int, str, object]]:
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
