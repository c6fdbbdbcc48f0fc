"""What ``connector trace IDENTITY`` shows: every batch row of one identity (read from the
manifests) with its outcome, its rejected source rows, its profile at each account, and
where the profile stands at each account (``account_states``, which decides the command's
exit code)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select

from connector import storage
from connector.digests import profile_digest
from connector.exit_codes import ExitCode, worst
from connector.ledger import (
    CLAIMED,
    COMPLETE,
    DEAD,
    FINAL_STATES,
    QUEUED,
    SUBMITTED,
    SUPERSEDED,
    Batch,
    Delivered,
    Ledger,
    ProfileStore,
    Reject,
    RowOutcome,
)
from connector.profiles import store as profile_store
from connector.reporting.queries import NOT_LANDED

_OUTCOME_OF_STATE = {
    QUEUED: "queued",
    CLAIMED: "submitting",
    SUBMITTED: "pending",
    COMPLETE: "delivered",
    SUPERSEDED: "retried in a later batch",
    DEAD: "dead",
}


def _local_manifests(batches: Any, folder: Path) -> dict[str, Batch]:
    """local manifest path -> its batch: a local outbox's files as they are, an object
    store's copied under ``folder``; missing manifests left out."""
    found: dict[str, Batch] = {}
    for batch in batches:
        try:
            local = storage.fetch(batch.manifest_path, folder / str(batch.id))
        except storage.ObjectMissing:
            continue
        found[str(local)] = batch
    return found


@dataclass
class TraceRow:
    """Where one source row of the identity went: its batch (0 when rejected) and outcome."""

    batch_id: int
    batch_key: str
    mapping: str
    partition: str
    destination_key: str
    attempt: int
    state: str
    remote_batch_id: str
    source_ref: str
    outcome: str
    reason: str


def _trace_row(batch: Batch, source_ref: str | None, outcome: str, reason: str | None) -> TraceRow:
    return TraceRow(
        batch_id=batch.id,
        batch_key=batch.batch_key,
        mapping=batch.mapping,
        partition=batch.partition,
        destination_key=batch.destination_key,
        attempt=batch.attempt,
        state=batch.state,
        remote_batch_id=batch.remote_batch_id or "",
        source_ref=source_ref or "",
        outcome=outcome,
        reason=reason or "",
    )


def trace(
    ledger: Ledger, identity: str, cache_dir: Path | None = None
) -> tuple[list[TraceRow], list[Delivered]]:
    """Every batch row of ``identity`` (from the manifests) with its outcome, and its digests.

    Manifests in an object store are read through copies under ``cache_dir``, removed before
    this returns; a batch whose manifest is gone shows through its outcome row only."""
    with ledger.session() as session:
        batches = {b.id: b for b in session.scalars(select(Batch).order_by(Batch.id))}
        outcomes = {
            o.batch_id: o
            for o in session.scalars(select(RowOutcome).where(RowOutcome.identity == identity))
        }
        delivered = list(session.scalars(select(Delivered).where(Delivered.identity == identity)))
        rejects = list(
            session.scalars(select(Reject).where(Reject.identity == identity).order_by(Reject.id))
        )
    rows: list[TraceRow] = []
    with storage.scratch(cache_dir) as folder:
        by_path = _local_manifests(batches.values(), folder)
        found: list[Any] = []
        if by_path:
            con = duckdb.connect()
            try:
                found = con.execute(
                    "select filename, _source_ref "
                    "from read_parquet(?, filename = true, union_by_name = true) "
                    "where _identity = ?",
                    [sorted(by_path), identity],
                ).fetchall()
            finally:
                con.close()
        for filename, source_ref in found:
            batch = by_path.get(filename) or by_path.get(str(Path(filename)))
            if batch is None:
                continue
            outcome = outcomes.get(batch.id)
            if outcome is not None:
                rows.append(_trace_row(batch, source_ref, outcome.status, outcome.reason))
            else:
                rows.append(
                    _trace_row(
                        batch,
                        source_ref,
                        _OUTCOME_OF_STATE.get(batch.state, batch.state),
                        batch.message if batch.state == DEAD else "",
                    )
                )
    # rows whose manifest is gone still show through their outcome
    seen = {r.batch_id for r in rows}
    for batch_id, outcome in outcomes.items():
        if batch_id in seen or batch_id not in batches:
            continue
        batch = batches[batch_id]
        rows.append(_trace_row(batch, outcome.source_ref, outcome.status, outcome.reason))
    # source rows of this identity that never reached a batch: rejected at extraction/mapping
    for reject in rejects:
        rows.append(
            TraceRow(
                batch_id=0,
                batch_key="",
                mapping=reject.mapping,
                partition=reject.partition,
                destination_key="",
                attempt=0,
                state="",
                remote_batch_id="",
                source_ref=reject.source_ref,
                outcome="rejected",
                reason=(f"{reject.param}: " if reject.param else "") + reject.reason,
            )
        )
    rows.sort(key=lambda r: (r.partition, r.batch_id))
    return rows, delivered


@dataclass
class AccountProfile:
    """One profile at one account as the connector holds it now, and what was confirmed.

    ``params``: name -> (value, mapping, day); ``current`` tells whether the last confirmed
    row carried exactly these values (the destination holds them)."""

    destination_key: str
    params: dict[str, tuple[str | None, str, str | None]]
    sources: dict[str, str]  # mapping -> the source row its latest values came from
    digest: str
    confirmed: Delivered | None

    @property
    def current(self) -> bool:
        return self.confirmed is not None and self.confirmed.digest == self.digest


def account_profiles(
    ledger: Ledger, identity: str, *, cache_dir: Path | None = None
) -> list[AccountProfile]:
    """``identity``'s profile at every account whose profile stores hold it; ``cache_dir``:
    where snapshots in an object store are copied to be read (``Settings.profiles_cache``)."""
    with ledger.session() as session:
        keys = sorted(set(session.scalars(select(ProfileStore.destination_key))))
        confirmed = {
            d.destination_key: d
            for d in session.scalars(select(Delivered).where(Delivered.identity == identity))
        }
    found: list[AccountProfile] = []
    for key in keys:
        params: dict[str, tuple[str | None, str, str | None]] = {}
        sources: dict[str, str] = {}
        for ref in profile_store.stores(ledger, key, cache_dir=cache_dir):
            row = profile_store.profile_values(ref, identity)
            for name in ref.param_names:
                value, day = row["params"][name] if row else (None, None)
                params[name] = (value, ref.mapping, day)
            if row:
                sources[ref.mapping] = str(row["source_ref"])
        if not sources:
            continue
        names = list(params)
        found.append(
            AccountProfile(
                destination_key=key,
                params=params,
                sources=sources,
                digest=profile_digest(names, [params[n][0] for n in names]),
                confirmed=confirmed.get(key),
            )
        )
    return found


@dataclass(frozen=True)
class AccountState:
    """Where one profile stands at one account, as an exit code and in words."""

    destination_key: str
    code: ExitCode  # OK: confirmed; NOT_FINAL: on its way or not queued yet; ROWS_FAILED
    why: str


def account_states(rows: list[TraceRow], profiles: list[AccountProfile]) -> list[AccountState]:
    """The profile's state at every account it has a profile or a batch row at: confirmed
    when the destination holds its current values, else decided by its latest batch row."""
    by_key = {p.destination_key: p for p in profiles}
    keys = sorted(set(by_key) | {r.destination_key for r in rows if r.batch_id})
    return [
        _state(key, by_key.get(key), [r for r in rows if r.batch_id and r.destination_key == key])
        for key in keys
    ]


def _state(key: str, profile: AccountProfile | None, rows: list[TraceRow]) -> AccountState:
    if profile is not None and profile.current:
        assert profile.confirmed is not None
        return AccountState(
            key, ExitCode.OK, f"confirmed: batch {profile.confirmed.batch_id} delivered it"
        )
    latest = max(rows, key=lambda r: r.batch_id, default=None)
    if latest is None:
        return AccountState(key, ExitCode.NOT_FINAL, "changed, not queued yet")
    if latest.state not in FINAL_STATES:
        return AccountState(
            key, ExitCode.NOT_FINAL, f"on its way: batch {latest.batch_id} is {latest.state}"
        )
    if latest.outcome in NOT_LANDED:
        return AccountState(
            key,
            ExitCode.ROWS_FAILED,
            f"{latest.outcome} in batch {latest.batch_id}: {latest.reason}".rstrip(": "),
        )
    if latest.outcome == "delivered" and profile is None:
        return AccountState(key, ExitCode.OK, f"confirmed: batch {latest.batch_id} delivered it")
    if latest.outcome == "delivered":
        return AccountState(
            key,
            ExitCode.NOT_FINAL,
            f"changed since batch {latest.batch_id} delivered it, not queued yet",
        )
    return AccountState(
        key, ExitCode.NOT_FINAL, f"{latest.outcome} in batch {latest.batch_id}, not final yet"
    )


def trace_exit_code(rows: list[TraceRow], states: list[AccountState]) -> ExitCode:
    """The most serious state over the accounts; ``ROWS_FAILED`` when every source row of the
    identity was rejected (nothing of it reached a profile). The caller handles an identity
    the ledger does not know (``USAGE``)."""
    if not states:
        return ExitCode.ROWS_FAILED if rows else ExitCode.OK
    return worst(*(s.code for s in states))
