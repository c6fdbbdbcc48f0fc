"""The ledger database: its engine, sessions, schema lock and migrations.

A ``Ledger`` is one database (SQLite under ``.connector/`` by default, or PostgreSQL) with a
session factory. The query modules beside this one each take a ``Ledger`` (and run their own
unit of work) or a ``Session`` (and run inside the caller's transaction): ``unit_of_work``
turns either into a session.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock
from sqlalchemy import (
    Column,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.ledger.models import Base, Batch

if TYPE_CHECKING:
    # imported where used: Alembic takes a quarter second to import, and a ledger whose
    # schema is current (every run but the first after a release) never needs it
    from alembic.config import Config
    from alembic.script import ScriptDirectory
from connector.sql_urls import with_installed_driver

_IMMEDIATE = "connector_sqlite_immediate"
# PostgreSQL's advisory lock key for Ledger._migrating (any constant no other tool uses)
SCHEMA_LOCK_KEY = 0x636F6E6E
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# locks of ledgers that live in this process only (SQLite in memory), by name
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()

# The dialect's ``insert`` construct: it has ``on_conflict_do_update`` (core's has not).
UpsertInsert = Callable[..., postgresql.Insert | sqlite.Insert]


def make_engine(url: str, *, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for the ledger; SQLite gets WAL and a busy timeout so processes can share it."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(
        with_installed_driver(url),
        future=True,
        pool_pre_ping=not is_sqlite,
        connect_args={"timeout": busy_timeout_s} if is_sqlite else {},
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Python's sqlite3 opens transactions lazily; BEGIN IMMEDIATE in claims needs
            # autocommit off at the driver level, handled by SQLAlchemy's own begin().
            dbapi_conn.isolation_level = None  # the "begin" hook below emits BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front: a read-then-write unit of work (a claim)
            # then waits on the busy timeout instead of failing with SQLITE_BUSY_SNAPSHOT.
            immediate = conn.get_execution_options().get(_IMMEDIATE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (``None`` for an in-memory database)."""
    database = url.database or ""
    if database.startswith("file:"):  # a URI filename: its path, without ``?mode=...``
        database = database.removeprefix("file:").split("?", 1)[0]
    return None if database in ("", ":memory:") else Path(database)


def ledger_location(url: str) -> str:
    """Where the ledger at ``url`` is, for people: a SQLite file's absolute path, else the URL
    with its password hidden."""
    parsed = with_installed_driver(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        return str(path.absolute()) if path is not None else "an in-memory SQLite database"
    return parsed.render_as_string(hide_password=True)


def ledger_exists(url: str) -> bool:
    """Whether a ledger is at ``url``, found without creating anything.

    A SQLite ledger exists when its file does (the file is not opened otherwise: opening
    creates it) and holds the ledger's tables; a server database (PostgreSQL, ...) when it
    holds them. A server that cannot be reached raises SQLAlchemy's error.
    """
    parsed = with_installed_driver(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is None or not path.is_file():
            return False
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table(Batch.__tablename__)
    finally:
        engine.dispose()


VERSION_TABLE = "alembic_version"  # where Alembic keeps the schema's revision


class LedgerNotFound(Exception):
    """No ledger where the settings point: commands that only read it do not create one."""


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` for the ledger at ``url`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def _migrations() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


@cache
def revisions() -> tuple[str, ...]:
    """This release's migrations under ``ledger/migrations/versions``, oldest first.

    Read from the file names, without Alembic: each migration is ``NNNN_<what>.py``, its
    revision is ``NNNN`` and it follows the one numbered before it
    (tests/ledger/test_migrations.py holds Alembic's history to that)."""
    numbers = [p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    assert numbers  # the first migration ships with the package
    return tuple(sorted(numbers))


def head_revision() -> str:
    """This release's schema: the newest migration (``revisions()``)."""
    return revisions()[-1]


def _version_table() -> Table:
    """Alembic's ``alembic_version`` table as Alembic creates it (one row: the revision)."""
    return Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )


def _create_current_schema(conn: Connection) -> None:
    """Create every table of the models and record the schema as this release's head, the
    way ``alembic stamp head`` would (the models and the migrations agree:
    tests/ledger/test_migrations.py), without importing or running Alembic."""
    Base.metadata.create_all(conn)
    version = _version_table()
    version.create(conn, checkfirst=True)
    conn.execute(version.delete())
    conn.execute(version.insert().values(version_num=head_revision()))


def _revisions_between(before: str | None, after: str | None) -> list[str]:
    """The migrations that take the schema from ``before`` to ``after``, oldest first."""
    if after is None or before == after:
        return []
    steps = _migrations().iterate_revisions(after, before or "base")
    return [script.revision for script in reversed(list(steps))]


class Ledger:
    """Engine + session factory for one ledger database."""

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_s=busy_timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Same pool; on SQLite its transactions start with BEGIN IMMEDIATE (write lock first).
        self._write_sessions = sessionmaker(
            self.engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False
        )

    @classmethod
    def open_existing(cls, url: str) -> Ledger:
        """The ledger at ``url`` brought up to date (Alembic), or ``LedgerNotFound`` naming
        where it was looked for when there is none: never creates one."""
        if not ledger_exists(url):
            raise LedgerNotFound(ledger_location(url))
        ledger = cls(url)
        # a ledger of an earlier release gets the new columns (create_all would not add them)
        ledger.upgrade()
        return ledger

    @property
    def is_sqlite(self) -> bool:
        """Whether the ledger is a SQLite database (one writer at a time)."""
        return self.engine.dialect.name == "sqlite"

    def create_all(self) -> None:
        """Create the current schema (tests, first run) and record it as Alembic's head, so
        that a later ``upgrade()`` applies only what comes after. On a ledger Alembic
        already tracks this only adds missing tables: upgrades go through ``upgrade()``."""
        with self._migrating() as conn:
            if VERSION_TABLE in inspect(conn).get_table_names():
                Base.metadata.create_all(conn)
            else:
                _create_current_schema(conn)

    def revision(self) -> str | None:
        """The schema's Alembic revision: ``None`` before any (a new, empty database).
        Read with one query, without Alembic (``alembic_version`` holds one row)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
            return None if found is None else str(found)

    def upgrade(self, revision: str = "head") -> list[str]:
        """Bring the schema to ``revision`` with Alembic (``connector/ledger/migrations``);
        the migrations applied, oldest first, none when the schema was there already.

        Every process calls it when it opens the ledger (each run, each sensor tick), so a
        schema already at ``revision`` costs one read of ``alembic_version``: no lock, no
        Alembic run. Otherwise it runs under the schema lock (``_migrating``): of processes
        starting together after a release, one applies the migrations and the others, once
        the lock is theirs, find them applied and apply nothing. A database without any
        table (the first run) going to this release's head gets the current schema created
        and stamped at once, with every migration reported as applied: the same schema as
        the migrations build, without their cost."""
        target = head_revision() if revision == "head" else revision
        if self.revision() == target:
            return []
        with self._migrating() as conn:
            if target == head_revision() and not inspect(conn).get_table_names():
                _create_current_schema(conn)
                return list(revisions())
            from alembic import command
            from alembic.runtime.migration import MigrationContext

            before = MigrationContext.configure(conn).get_current_revision()
            if before == target:
                return []  # another process applied them while this one waited for the lock
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            after = MigrationContext.configure(conn).get_current_revision()
        return _revisions_between(before, after)

    @contextmanager
    def _migrating(self) -> Iterator[Connection]:
        """A transaction that holds the ledger's schema lock: two processes starting at once
        on a new ledger (two syncs) change its schema one after the other, the second finding
        it done. SQLite: the write lock, taken first (BEGIN IMMEDIATE); PostgreSQL: a
        transaction-scoped advisory lock."""
        is_sqlite = self.is_sqlite
        engine = self.engine.execution_options(**{_IMMEDIATE: True}) if is_sqlite else self.engine
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            yield conn

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the lock ``name`` within the block: one holder at a time among every process
        and thread that shares this ledger; the others wait. PostgreSQL: a session-level
        advisory lock (so across machines), held on a connection of its own and no
        transaction; SQLite (one machine): a file lock beside the database file; SQLite in
        memory: a lock of this process."""
        key = advisory_key(name)
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    conn.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            with _PROCESS_LOCKS_GUARD:
                lock = _PROCESS_LOCKS.setdefault(f"{id(self)}:{name}", threading.Lock())
            with lock:
                yield
            return
        with FileLock(f"{database}.{key & 0xFFFFFFFF:08x}.lock"):
            yield

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error.

        ``immediate=True`` takes the database's write lock at the start on SQLite (use it
        for read-then-write work such as claims); PostgreSQL locks rows as it goes.
        """
        factory = self._write_sessions if immediate else self._sessions
        with factory() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key of the lock ``name`` (64 bits of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_for_transaction(session: Session, name: str) -> None:
    """Hold the lock ``name`` until the session's transaction ends: one holder at a time among
    every process sharing the ledger. PostgreSQL: a transaction-scoped advisory lock (no row
    to create first); SQLite: the database's write lock, which a session opened with
    ``immediate=True`` takes as it begins (begun here)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
    else:
        session.connection()


@contextmanager
def unit_of_work(target: Ledger | Session, *, immediate: bool = False) -> Iterator[Session]:
    """The caller's ``Session`` as it is, or a new unit of work of the ``Ledger``."""
    if isinstance(target, Session):
        yield target
    else:
        with target.session(immediate=immediate) as session:
            yield session


def upsert_insert(session: Session) -> UpsertInsert:
    """The ``insert`` of the session's dialect, which can upsert (SQLite or PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no upsert for {name}")  # the ledger runs on SQLite or PostgreSQL
