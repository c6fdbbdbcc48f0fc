"""A batch's rows made final: confirmed digests, outcomes, re-queues, the batch's counts.

``settle`` takes what a destination said of a batch (``destinations.base.Settled``) and
records it: rows not named as failed or not found are confirmed (``ledger.Delivered``: a
digest is stored only after the destination confirmed it), not-found rows are final, failed
rows are re-queued as the profiles' current rows or die when out of attempts. Before that,
rows the answer could not name (v1 counts) are found by reading every row back, and a sample
of the confirmed rows is read back to verify them (``verify_sample``).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import update

from connector import ledger as ledger_mod
from connector.columns import IDENTITY, SOURCE_REF
from connector.delivery.claims import utcnow
from connector.delivery.requeue import (
    ROW_NOT_FOUND,
    newer_batches_with,
    requeue_or_dead,
    write_outcomes,
)
from connector.destinations.base import Destination, Settled
from connector.destinations.http import DeliveryError
from connector.ledger import COMPLETE, Batch, Ledger
from connector.outbox import manifests
from connector.outbox.files import OutboxFile
from connector.settings import Settings

DEFAULT_IDENTIFY_LIMIT = 5_000
NOT_CREATED = "the destination does not create profiles (Target v1): profile not found"


class Found(enum.Enum):
    """What reading one profile back showed."""

    MATCH = "match"  # every non-empty value sent is stored as sent
    MISSING = "missing"  # no such profile at the destination
    DIFFERS = "differs"
    UNREADABLE = "unreadable"  # the read itself failed


@dataclass(frozen=True)
class Check:
    found: Found
    reason: str = ""


@dataclass
class Tally:
    """Rows of one settled batch, by outcome, and the read-backs made."""

    confirmed: int = 0
    failed: int = 0
    not_found: int = 0
    requeued: int = 0
    dead: int = 0
    verified: int = 0
    verified_ok: int = 0


def compare(expected: Mapping[str, Any], stored: dict[str, str] | None) -> Check:
    """Whether every non-empty expected value is stored as is."""
    if stored is None:
        return Check(Found.MISSING, "profile not found at the service")
    for name, value in expected.items():
        if value in (None, ""):
            continue
        if stored.get(name) != value:
            return Check(
                Found.DIFFERS, f"param {name}: stored {stored.get(name)!r} != sent {value!r}"
            )
    return Check(Found.MATCH)


def read_back(destination: Destination, file: OutboxFile, rows: pa.Table) -> dict[str, Check]:
    """identity -> what reading it back showed, for manifest ``rows`` of ``file``."""
    names = file.param_names()
    out: dict[str, Check] = {}
    for row in file.with_values(rows).to_pylist():
        ident = row[IDENTITY]
        try:
            stored = destination.read_back(ident, file.identity_type)
        except DeliveryError as exc:
            out[ident] = Check(Found.UNREADABLE, f"read-back failed: {exc}")
            continue
        out[ident] = compare({n: row[n] for n in names}, stored)
    return out


def _sample(ids: list[str], k: int, *, seed: int) -> list[str]:
    if k <= 0 or not ids:
        return []
    if len(ids) <= k:
        return list(ids)
    return random.Random(seed).sample(ids, k)  # noqa: S311 - sampling, not security


def settle(
    ledger: Ledger,
    settings: Settings,
    destination: Destination,
    batch: Batch,
    settled: Settled,
    *,
    identify_limit: int = DEFAULT_IDENTIFY_LIMIT,
) -> Tally:
    """Record ``settled`` for ``batch`` (see the module doc); the batch becomes complete."""
    file = OutboxFile.of(batch, settings.cache_dir)
    table = file.manifest()
    ids = table.column(IDENTITY).to_pylist()
    failed, not_found = dict(settled.failed), dict(settled.not_found)
    tally = Tally()
    if settled.unidentified:
        _identify(destination, file, table, settled.unidentified, identify_limit, failed, not_found)
    confirmed_ids = [i for i in ids if i not in failed and i not in not_found]
    if destination.verify_sample and confirmed_ids:
        # a profile that a newer batch has updated since cannot show this batch's values
        newer = newer_batches_with(ledger, batch, confirmed_ids, settings.cache_dir)
        verifiable = [i for i in confirmed_ids if i not in newer]
        sample = _sample(verifiable, destination.verify_sample, seed=batch.id)
        if sample:
            picked = table.filter(pc.is_in(table.column(IDENTITY), pa.array(sample, pa.string())))
            for ident, check in read_back(destination, file, picked).items():
                tally.verified += 1
                if check.found is Found.MATCH:
                    tally.verified_ok += 1
                else:
                    failed[ident] = f"read-back mismatch: {check.reason}"
    _record(ledger, settings, batch, table, failed, not_found, settled, tally)
    return tally


def settle_by_read_back(
    ledger: Ledger,
    settings: Settings,
    destination: Destination,
    batch: Batch,
    why: str,
) -> Tally:
    """A batch whose status is gone: every row read back decides (the caller checked that
    the batch is small enough)."""
    file = OutboxFile.of(batch, settings.cache_dir)
    table = file.manifest()
    failed: dict[str, str] = {}
    not_found: dict[str, str] = {}
    tally = Tally()
    for ident, check in read_back(destination, file, table).items():
        tally.verified += 1
        if check.found is Found.MATCH:
            tally.verified_ok += 1
        elif check.found is Found.MISSING and not destination.creates_profiles:
            not_found[ident] = f"{NOT_CREATED} ({why})"
        else:
            failed[ident] = f"{why}; read-back: {check.reason}"
    _record(ledger, settings, batch, table, failed, not_found, Settled(), tally)
    return tally


def _identify(
    destination: Destination,
    file: OutboxFile,
    table: pa.Table,
    reported: str,
    limit: int,
    failed: dict[str, str],
    not_found: dict[str, str],
) -> None:
    """Find the rows a counts-only answer did not name, by reading every row back."""
    if table.num_rows > limit:
        reason = f"{reported} for {table.num_rows} rows; too many to identify by read-back"
        failed.update(dict.fromkeys(table.column(IDENTITY).to_pylist(), reason))
        return
    for ident, check in read_back(destination, file, table).items():
        if check.found is Found.MISSING and not destination.creates_profiles:
            not_found[ident] = NOT_CREATED
        elif check.found is not Found.MATCH:
            failed[ident] = check.reason


def _record(
    ledger: Ledger,
    settings: Settings,
    batch: Batch,
    table: pa.Table,
    failed: dict[str, str],
    not_found: dict[str, str],
    settled: Settled,
    tally: Tally,
) -> None:
    ids = table.column(IDENTITY)
    bad = pc.is_in(ids, pa.array(list(failed) + list(not_found), pa.string()))
    confirmed = table.filter(pc.invert(bad))
    ledger_mod.record_delivered(
        ledger,
        batch.destination_key,
        manifests.delivered_table(confirmed),
        partition=batch.partition,
        batch_id=batch.id,
    )
    if not_found:
        nf = table.filter(pc.is_in(ids, pa.array(list(not_found), pa.string())))
        with ledger.session(immediate=True) as session:
            refs = nf.column(SOURCE_REF).to_pylist()
            write_outcomes(
                session,
                batch.id,
                [
                    (i, r, ROW_NOT_FOUND, not_found[i])
                    for i, r in zip(nf.column(IDENTITY).to_pylist(), refs, strict=True)
                ],
            )
    retry_rows = table.filter(pc.is_in(ids, pa.array(list(failed), pa.string())))
    requeued, dead = requeue_or_dead(ledger, settings, batch, retry_rows, failed)
    with ledger.session(immediate=True) as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(
                state=COMPLETE,
                finished_at=utcnow(),
                successful=confirmed.num_rows,
                not_found=len(not_found) if not_found else settled.not_found_count,
                failed_rows=len(failed),
                message=f"{confirmed.num_rows} confirmed, {requeued} requeued, {dead} dead",
            )
        )
    tally.confirmed += confirmed.num_rows
    tally.failed += len(failed)
    tally.not_found += len(not_found)
    tally.requeued += requeued
    tally.dead += dead
