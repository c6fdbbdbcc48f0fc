"""Asset check results of the connector's assets: one function per check, each stating what
passes. The assets (``connector.defs.assets``) compute the inputs and yield the results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
from sqlalchemy import distinct, func, select

from connector.columns import IDENTITY
from connector.ledger import Batch, Ledger, Reject
from connector.settings import Settings
from connector.source_deletions import Deletions


def rejected_rows(ledger: Ledger, mapping: str, partition: str) -> int:
    """Rows of the partition with at least one reject line (a row gets one per bad value)."""
    with ledger.session() as session:
        count = session.scalar(
            select(func.count(distinct(Reject.source_ref))).where(
                Reject.mapping == mapping, Reject.partition == partition
            )
        )
    return int(count or 0)


def deletions_check(key: dg.AssetKey, deletions: Deletions) -> dg.AssetCheckResult:
    """Passes when the source still holds every identity of the store; else WARN, with the
    count and the first identities (the rows were deleted at the source after delivery)."""
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="deleted_at_source",
        passed=deletions.deleted == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "deleted_at_source": deletions.deleted,
            "store_identities": deletions.store_identities,
            "sample": ", ".join(deletions.sample),
        },
    )


def reject_rate_check(
    key: dg.AssetKey, *, accepted: int, rejected: int, settings: Settings
) -> dg.AssetCheckResult:
    """``reject_rate = rejected / rows_read``, ``rows_read = accepted + rejected``; 0 when no
    row was read.

    ``accepted``: source rows that became profile updates (before the day's dedupe);
    ``rejected``: source rows rejected, each once however many of its values were bad; a
    line the source could not turn into a row (ragged, undecodable, a file that could not be
    read) is one rejected row read. Passes up to ``reject_rate_warn``; above it the severity
    is WARN, above ``reject_rate_error`` ERROR.
    """
    rows_read = accepted + rejected
    rate = rejected / rows_read if rows_read else 0.0
    severity = (
        dg.AssetCheckSeverity.ERROR
        if rate > settings.reject_rate_error
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="reject_rate",
        passed=rate <= settings.reject_rate_warn,
        severity=severity,
        metadata={
            "reject_rate": rate,
            "rejected": rejected,
            "rows_read": rows_read,
            "warn_above": settings.reject_rate_warn,
            "error_above": settings.reject_rate_error,
        },
    )


def caps_check(
    batches: Sequence[Batch], settings: Settings, destination: str
) -> dg.AssetCheckResult:
    """Row and byte caps, checked against the files on disk, not only the ledger's word."""
    problems: list[str] = []
    for batch in batches:
        path = Path(batch.path)
        if not path.exists():
            if batch.state == "queued":
                problems.append(f"{batch.batch_key}: file missing ({path})")
            continue
        size = path.stat().st_size
        if size != batch.byte_size:
            problems.append(
                f"{batch.batch_key}: {size} bytes on disk, ledger says {batch.byte_size}"
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
    return dg.AssetCheckResult(
        check_name="within_caps",
        passed=not problems,
        metadata={
            "files": len(batches),
            "max_rows": max((b.row_count for b in batches), default=0),
            "max_bytes": max((b.byte_size for b in batches), default=0),
            "row_cap": settings.target.max_batch_rows,
            "byte_cap": settings.target.max_batch_bytes,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:50]) or "none"),
        },
    )


def identities_check(
    batches: Sequence[Batch], destination: str, identity_type: str
) -> dg.AssetCheckResult:
    """thirdPartyId: non-empty, no `+` or `/`, at most 256 characters; pcId non-empty."""
    bad: list[str] = []
    checked = 0
    for batch in batches:
        manifest = Path(batch.manifest_path)
        if not manifest.exists():
            continue
        ids = pq.read_table(manifest, columns=[IDENTITY]).column(IDENTITY).to_pylist()
        checked += len(ids)
        for value in ids:
            if not value or (
                destination == "target"
                and identity_type == "thirdPartyId"
                and ("+" in value or "/" in value or len(value) > 256)
            ):
                bad.append(repr(value)[:80])
    return dg.AssetCheckResult(
        check_name="identities_valid",
        passed=not bad,
        metadata={
            "checked": checked,
            "invalid": len(bad),
            "examples": dg.MetadataValue.md("\n".join(f"- {b}" for b in bad[:20]) or "none"),
        },
    )
