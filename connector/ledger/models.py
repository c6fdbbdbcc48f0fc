"""The ledger's tables: what was extracted, queued, submitted and confirmed, as typed models.

Batch-level state lives in ``batches``; the rows of a batch are listed in its manifest (a
Parquet file beside the batch file), and per-row outcomes that differ from the batch's own
(failed, not found, pending) are recorded in ``row_outcomes``. The schema changes only through
the Alembic revisions in ``connector/ledger/migrations``.

Batch states::

    queued -> claimed -> submitted -> complete
                    \\-> queued (submit failed before the service accepted it)
    submitted -> failed | stuck | expired -> (rows re-queued as a new attempt) -> superseded
    any -> dead (attempts exhausted; reason kept)
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connector.settings import Settings


def utcnow() -> dt.datetime:
    """Now, timezone-aware in UTC: every timestamp the ledger stores."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """The declarative base of every ledger table (its ``metadata`` is the schema)."""


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
# every state of the diagram above (a batch enters each by a committed write of the ledger)
BATCH_STATES = (QUEUED, CLAIMED, SUBMITTED, COMPLETE, FAILED, STUCK, EXPIRED, SUPERSEDED, DEAD)
# States whose rows are on their way (or about to be): a rerun must not queue them again.
IN_FLIGHT_STATES = (QUEUED, CLAIMED, SUBMITTED)
# The end states of the diagram above.
FINAL_STATES = (COMPLETE, SUPERSEDED, DEAD)


class Batch(Base):
    """One batch file in the outbox, one attempt at delivering its rows."""

    __tablename__ = "batches"
    __table_args__ = (
        # the same content may be sent again later (a profile's values changed back); only
        # queueing it twice while the first is on its way is refused (by the outbox writer)
        Index("ix_batches_sha256", "sha256", "attempt"),
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
    # how the rows identify profiles: pcId | thirdPartyId | the Copernica match field
    identity_type: Mapped[str] = mapped_column(String(64), default="")
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
    last_polled_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
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
    status: Mapped[str] = mapped_column(
        String(16)
    )  # failed | not_found | pending | requeued | dead
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Delivered(Base):
    """The last confirmed row of one profile at one destination account.

    A row carries the profile's whole managed attribute set at the account (every mapping that
    feeds it), so ``digest`` covers all of them. ``batch_id`` orders confirmations: the outbox
    writes a profile's rows in the order it learns of newer values, so a confirmation of an
    older batch never replaces a newer one's. ``partition`` is the newest source day among the
    row's values.
    """

    __tablename__ = "delivered"
    # PostgreSQL: pages half filled by inserts, so that the next confirmation of a profile
    # rewrites its row in the same page, a HOT update that leaves the primary key's index
    # alone; the page's dead versions are pruned when it next needs room (migration 0006
    # sets it on older ledgers)
    __table_args__ = {"postgresql_with": {"fillfactor": 50}}

    destination_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    identity: Mapped[str] = mapped_column(String(300), primary_key=True)
    partition: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    # comma-separated param names that were non-empty when delivered
    nonempty: Mapped[str] = mapped_column(Text, default="")
    # the ``batches.id`` that carried the row: no foreign key, whose check of every row cost
    # more than the row's own write; ``record_delivered`` checks its batch once a call
    batch_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProfileStore(Base):
    """One mapping's current values at one destination account (``connector.profiles.store``).

    ``path`` is the snapshot file of ``version`` (Parquet: one row per identity, the latest
    non-empty value of each param in the source's order). A merge writes a new file and moves
    ``version`` forward with a compare-and-set, so two merges at once never lose each other's
    rows. ``built_version``: the outbox has taken every change up to that version.
    """

    __tablename__ = "profile_stores"

    destination_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    mapping: Mapped[str] = mapped_column(String(120), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(Text, default="")
    identity_type: Mapped[str] = mapped_column(String(64))
    param_names: Mapped[str] = mapped_column(Text, default="[]")  # JSON list, in order
    identities: Mapped[int] = mapped_column(BigInteger, default=0)
    built_version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuotaUse(Base):
    """Rows submitted per destination per day (the day in the configured timezone)."""

    __tablename__ = "quota_use"

    destination_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class CallSlot(Base):
    """One API call to an account, counted against the account's calls per minute
    (``connector.delivery.call_limit`` grants and frees slots; it defines the rule).

    Times are seconds since the epoch by the ledger's clock (PostgreSQL's, so hosts whose
    clocks differ share one timeline). A slot counts until ``free_at``: a minute after its call
    was answered (``answered_at``), or, while no answer is recorded, a minute after its grant
    plus the longest a call may take to reach the service (a process that died mid-call).
    Slots that stopped counting are deleted by the next grant of the account."""

    __tablename__ = "call_slots"
    __table_args__ = (
        Index("ix_call_slots_key_free", "destination_key", "free_at"),
        # a slot's id is never reused (SQLite would reuse a deleted one's): a late answer
        # recorded by the call of a deleted slot can only miss, never land on another's
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination_key: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[float] = mapped_column(Float)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    free_at: Mapped[float] = mapped_column(Float)


class IngestedFile(Base):
    """A source file (POS export) read for a mapping, by checksum: ingested once, changes seen.
    ``path`` is the file's path or the object's URL."""

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
    # the file's ETag as listed before it was read: an object's from its store, a local
    # file's its size and mtime (``storage.local_etag``); null for a local file recorded
    # before local files had one (the POS sensor hashes it once, then records it)
    etag: Mapped[str | None] = mapped_column(String(200), nullable=True)


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


class OutboxBuild(Base):
    """One build of an account's outbox that found changed profiles: how many, how many were
    already sent (the same row is queued, on its way or confirmed), and of the rows written,
    how many are ``added`` (the profile's first row at the account: none queued, on its way
    or confirmed before); the others are updates. The delivery run records read them."""

    __tablename__ = "outbox_builds"
    __table_args__ = (Index("ix_outbox_builds_key_built", "destination_key", "built_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination_key: Mapped[str] = mapped_column(String(200))
    changed: Mapped[int] = mapped_column(Integer, default=0)
    already_sent: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeliveryRun(Base):
    """The record of one delivery run at one account, written by its status report and kept
    (the report's history): when it ran, and in ``figures_json`` what it counted
    (``connector.reporting.runs`` defines every figure and writes the record)."""

    __tablename__ = "delivery_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "destination_key", name="uq_delivery_run"),
        Index("ix_delivery_runs_destination", "destination", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(16))  # target | copernica
    destination_key: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str] = mapped_column(String(120))  # the Dagster run's id
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    figures_json: Mapped[str] = mapped_column(Text, default="{}")


def destination_key(destination: str, settings: Settings) -> str:
    """``target:<client code>`` or ``copernica:<database>``: the scope of quota and digests."""
    if destination == "target":
        return f"target:{settings.target.client_code}"
    if destination == "copernica":
        return f"copernica:{settings.copernica.database}"
    raise ValueError(f"unknown destination {destination!r} (use target or copernica)")
