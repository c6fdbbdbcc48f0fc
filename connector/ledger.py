"""The ledger: the source of truth for what was extracted, queued, submitted and confirmed.

SQLAlchemy 2 typed models on SQLite (default, under ``.connector/``) or PostgreSQL.
Batch-level state lives here; the rows of a batch are listed in its manifest (a
Parquet file beside the batch file), and per-row outcomes that differ from the
batch's own (failed, not found, pending) are recorded in ``row_outcomes``.

Batch states::

    queued -> claimed -> submitted -> complete
                    \\-> queued (submit failed before the service accepted it)
    submitted -> failed | stuck | expired -> (rows re-queued as a new attempt) -> superseded
    any -> dead (attempts exhausted; reason kept)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


# Batch states
QUEUED = "queued"
CLAIMED = "claimed"
SUBMITTED = "submitted"
COMPLETE = "complete"
FAILED = "failed"
STUCK = "stuck"
EXPIRED = "expired"
SUPERSEDED = "superseded"
DEAD = "dead"
OPEN_STATES = (CLAIMED, SUBMITTED)
FINAL_STATES = (COMPLETE, SUPERSEDED, DEAD)


class Batch(Base):
    """One batch file in the outbox, one attempt at delivering its rows."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("sha256", "attempt", name="uq_batch_digest_attempt"),
        Index("ix_batches_dest_state", "destination_key", "state", "created_at"),
        Index("ix_batches_mapping_partition", "mapping", "partition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_key: Mapped[str] = mapped_column(String(200), unique=True)
    mapping: Mapped[str] = mapped_column(String(120))
    partition: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(16))  # target | copernica
    # quota/limit scope: "target:<client code>" or "copernica:<database>"
    destination_key: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    manifest_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    remote_batch_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_polled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    poll_count: Mapped[int] = mapped_column(Integer, default=0)
    successful: Mapped[int | None] = mapped_column(Integer, nullable=True)
    not_found: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failed_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class RowOutcome(Base):
    """A row of a batch whose outcome differs from the batch's: failed, not found, pending, dead."""

    __tablename__ = "row_outcomes"
    __table_args__ = (
        UniqueConstraint("batch_id", "identity", name="uq_row_outcome"),
        Index("ix_row_outcomes_identity", "identity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    identity: Mapped[str] = mapped_column(String(300))
    source_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # failed | not_found | pending | requeued | dead
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Delivered(Base):
    """The last values confirmed delivered for one identity at one destination."""

    __tablename__ = "delivered"

    destination_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    identity: Mapped[str] = mapped_column(String(300), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    # comma-separated param names that were non-empty when delivered (to report clears)
    nonempty: Mapped[str] = mapped_column(Text, default="")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    delivered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuotaUse(Base):
    """Rows submitted per destination per day (the day in the configured timezone)."""

    __tablename__ = "quota_use"

    destination_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class IngestedFile(Base):
    """A source file (POS export) read for a mapping, by checksum: ingested once, changes noticed."""

    __tablename__ = "ingested_files"
    __table_args__ = (UniqueConstraint("mapping", "path", "sha256", name="uq_ingested_file"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mapping: Mapped[str] = mapped_column(String(120))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    partition: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Cursor(Base):
    """High-water mark of an incremental SQL source, per mapping."""

    __tablename__ = "cursors"

    mapping: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    partition: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reject(Base):
    """A source row (or value) that could not become a profile update, with the reason."""

    __tablename__ = "rejects"
    __table_args__ = (Index("ix_rejects_mapping_partition", "mapping", "partition"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mapping: Mapped[str] = mapped_column(String(120))
    partition: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str] = mapped_column(Text)  # file:line or primary key
    identity: Mapped[str | None] = mapped_column(Text, nullable=True)
    param: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text, nullable=True)  # truncated source text
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StageRun(Base):
    """Counts of one stage (extract, transform, batches) of one mapping partition, latest wins."""

    __tablename__ = "stage_runs"

    mapping: Mapped[str] = mapped_column(String(120), primary_key=True)
    partition: Mapped[str] = mapped_column(String(32), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    stats_json: Mapped[str] = mapped_column(Text, default="{}")
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str) -> Engine:
    """An engine for the ledger; SQLite gets WAL and a busy timeout so two processes can share it."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        future=True,
        pool_pre_ping=not is_sqlite,
        connect_args={"timeout": 30} if is_sqlite else {},
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Python's sqlite3 opens transactions lazily; BEGIN IMMEDIATE in claims needs
            # autocommit off at the driver level, handled by SQLAlchemy's own begin().
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


class Ledger:
    """Engine + session factory for one ledger database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def create_all(self) -> None:
        """Create missing tables (tests, first run). Upgrades of an existing ledger go through Alembic."""
        Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
