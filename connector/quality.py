"""The data-quality rules the pipeline's asset checks report, as plain functions.

Each rule returns its findings (what was checked, what failed, the evidence); the asset
checks (``defs/checks.py``) only turn them into check results. The outbox rules read
the files in the outbox (a folder or an object store), not only the ledger's word about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connector import storage
from connector.columns import IDENTITY
from connector.ledger import Batch
from connector.outbox import manifests
from connector.settings import Settings
from connector.transform.identities import invalid_identity_reasons

# Adobe allows up to 0.1% of the rows of large batches never to land.
LANDING_RATE_MIN = 0.999


@dataclass(frozen=True)
class CapsFindings:
    """The queued files measured against the Target row and byte caps."""

    files: int
    max_rows: int
    max_bytes: int
    row_cap: int
    byte_cap: int
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def within_caps(batches: Sequence[Batch], settings: Settings, destination: str) -> CapsFindings:
    """A queued file must exist; every file must have the size the ledger recorded; a Target
    file must hold at most ``max_batch_rows`` rows and ``max_batch_bytes`` bytes."""
    problems: list[str] = []
    for batch in batches:
        try:
            size = storage.head(batch.path).size
        except storage.ObjectMissing:
            if batch.state == "queued":
                problems.append(f"{batch.batch_key}: file missing ({batch.path})")
            continue
        if size != batch.byte_size:
            problems.append(
                f"{batch.batch_key}: {size} bytes in the outbox, ledger says {batch.byte_size}"
            )
        if destination == "target":
            if batch.row_count > settings.target.max_batch_rows:
                problems.append(
                    f"{batch.batch_key}: {batch.row_count} rows > {settings.target.max_batch_rows}"
                )
            if size > settings.target.max_batch_bytes:
                problems.append(
                    f"{batch.batch_key}: {size} bytes > {settings.target.max_batch_bytes}"
                )
    return CapsFindings(
        files=len(batches),
        max_rows=max((b.row_count for b in batches), default=0),
        max_bytes=max((b.byte_size for b in batches), default=0),
        row_cap=settings.target.max_batch_rows,
        byte_cap=settings.target.max_batch_bytes,
        problems=problems,
    )


@dataclass(frozen=True)
class IdentityFindings:
    """How many identities the manifests hold and the refused ones (``repr``, shortened)."""

    checked: int
    invalid: list[str]

    @property
    def passed(self) -> bool:
        return not self.invalid


def identities_valid(
    batches: Sequence[Batch],
    destination: str,
    identity_type: str,
    cache_dir: Path | None = None,
) -> IdentityFindings:
    """Every identity in the batches' manifests against the identity rules the transform
    applies (``connector.transform.identities``); a missing manifest is skipped. Manifests
    in an object store are read through ``cache_dir``."""
    invalid: list[str] = []
    checked = 0
    for batch in batches:
        try:
            table = manifests.read(batch.manifest_path, cache_dir, columns=[IDENTITY])
        except storage.ObjectMissing:
            continue
        ids = table.column(IDENTITY)
        checked += len(ids)
        reasons = invalid_identity_reasons(ids, destination, identity_type)
        invalid += [
            f"{value!r:.80} ({reason})"
            for value, reason in zip(ids.to_pylist(), reasons, strict=True)
            if reason
        ]
    return IdentityFindings(checked, invalid)


@dataclass(frozen=True)
class RejectRate:
    """``rate = rejected / rows_read`` against the configured thresholds."""

    rate: float
    rejected: int
    rows_read: int
    warn_above: float
    error_above: float

    @property
    def passed(self) -> bool:
        return self.rate <= self.warn_above

    @property
    def is_error(self) -> bool:
        return self.rate > self.error_above


def reject_rate(*, accepted: int, rejected: int, settings: Settings) -> RejectRate:
    """``rows_read = accepted + rejected``; the rate is 0 when no row was read.

    ``accepted``: source rows that became profile updates (before the day's dedupe);
    ``rejected``: source rows rejected, each once however many of its values were bad; a
    line the source could not turn into a row (ragged, undecodable, a file that could not be
    read) is one rejected row read. Passes up to ``reject_rate_warn``; above
    ``reject_rate_error`` it is an error.
    """
    rows_read = accepted + rejected
    return RejectRate(
        rate=rejected / rows_read if rows_read else 0.0,
        rejected=rejected,
        rows_read=rows_read,
        warn_above=settings.reject_rate_warn,
        error_above=settings.reject_rate_error,
    )


def landed_enough(landing_rate: float | None) -> bool:
    """The read-back sample landed at ``LANDING_RATE_MIN`` or better (or nothing was read back)."""
    return landing_rate is None or landing_rate >= LANDING_RATE_MIN
