"""Asset check results of the connector's assets: each turns the findings of a rule in
``connector.quality`` (or ``connector.source_deletions``) into a Dagster check result. Check
names, severities and metadata keys are what the UI, the alerts and the tests read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from connector import quality
from connector.defs.metadata import landing_rate_pct
from connector.ledger import Batch
from connector.settings import Settings
from connector.source_deletions import Deletions


def _bullets(lines: Sequence[str], limit: int) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {line}" for line in lines[:limit]) or "none")


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
    """``quality.reject_rate``: passes up to ``reject_rate_warn``; above it the severity is
    WARN, above ``reject_rate_error`` ERROR."""
    found = quality.reject_rate(accepted=accepted, rejected=rejected, settings=settings)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="reject_rate",
        passed=found.passed,
        severity=dg.AssetCheckSeverity.ERROR if found.is_error else dg.AssetCheckSeverity.WARN,
        metadata={
            "reject_rate": found.rate,
            "rejected": found.rejected,
            "rows_read": found.rows_read,
            "warn_above": found.warn_above,
            "error_above": found.error_above,
        },
    )


def caps_check(
    batches: Sequence[Batch], settings: Settings, destination: str
) -> dg.AssetCheckResult:
    """``quality.within_caps``: row and byte caps, checked against the files in the outbox."""
    return caps_result(quality.within_caps(batches, settings, destination))


def caps_result(found: quality.CapsFindings) -> dg.AssetCheckResult:
    """The ``within_caps`` check result of ``quality.within_caps``'s findings."""
    return dg.AssetCheckResult(
        check_name="within_caps",
        passed=found.passed,
        metadata={
            "files": found.files,
            "max_rows": found.max_rows,
            "max_bytes": found.max_bytes,
            "row_cap": found.row_cap,
            "byte_cap": found.byte_cap,
            "problems": _bullets(found.problems, 50),
        },
    )


def identities_check(
    batches: Sequence[Batch],
    destination: str,
    identity_type: str,
    cache_dir: Path | None = None,
) -> dg.AssetCheckResult:
    """``quality.identities_valid``: every identity in the manifests is one the API accepts."""
    return identities_result(
        quality.identities_valid(batches, destination, identity_type, cache_dir)
    )


def identities_result(found: quality.IdentityFindings) -> dg.AssetCheckResult:
    """The ``identities_valid`` check result of ``quality.identities_valid``'s findings."""
    return dg.AssetCheckResult(
        check_name="identities_valid",
        passed=found.passed,
        metadata={
            "checked": found.checked,
            "invalid": len(found.invalid),
            "examples": _bullets(found.invalid, 20),
        },
    )


def landing_check(landing_rate: float | None, verified: int) -> dg.AssetCheckResult:
    """``quality.landed_enough``: WARN when fewer read-back profiles landed than Adobe allows.
    The rate is in percent (``landing_rate_pct``), left out when nothing was read back."""
    return dg.AssetCheckResult(
        check_name="landing_rate",
        passed=quality.landed_enough(landing_rate),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            **landing_rate_pct(landing_rate),
            "min_landing_rate_pct": dg.MetadataValue.float(
                round(quality.LANDING_RATE_MIN * 100, 2)
            ),
            "verified": verified,
        },
        description="Adobe allows up to 0.1% of large batches never to land.",
    )
