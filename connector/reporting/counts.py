"""Every count the reports show, each defined once (``DEFINITIONS`` says what each means,
in the words the HTML report, the CLI and the docs use).

Per mapping, what became of the source rows of the days it ran, from its stages' counts
(the same figures whether they come from Dagster's metadata or the ledger's ``StageRun``):
``add_stage``. Per destination account, what became of its rows (one row per profile,
whole), from the ledger's batches and row outcomes: ``add_batch`` / ``delivery_counts``. A
row re-queued into a retry batch is counted once, in the batch that settled it; a row not
re-sent because a newer batch carries its profile counts as neither confirmed nor failed
(the newer batch does). ``connector.reporting.sync_summary`` (one ``connector sync``) and
``connector.reporting.runs`` (the delivery run records) both count with these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connector.ledger import COMPLETE, DEAD, FINAL_STATES, Batch
from connector.reporting.queries import NOT_LANDED

# per mapping: what became of the source rows of the days it ran
MAPPING_COUNTS = ("read", "rejected", "merged", "unchanged", "outdated", "changed")
# per account: what became of its rows
DELIVERY_COUNTS = ("queued", "submitted", "confirmed", "failed", "dead")
# what a row outcome status means, in the words of the reports
OUTCOME_LABELS = {
    "requeued": "re-queued (sent again)",
    "superseded": "not re-sent (a newer row carries the profile)",
    "not_found": "not found (the API does not create profiles)",
    "dead": "dead (out of attempts)",
    "failed": "failed",
    "error": "failed",
}
DEFINITIONS = {
    "read": "source rows of the days run (extracted, or rejected while extracting)",
    "rejected": "problems found in source rows, each with its reason (one per bad value: "
    "a row with two bad values counts twice)",
    "merged": "rows merged into a later row of the same identity and day",
    "unchanged": "identities whose values the profile store already had",
    "outdated": "identities whose values of the day lost to values of a later day",
    "changed": "identities whose current values changed: the account's outbox sends them",
    "already_sent": "changed profiles whose whole row is the one queued, on its way or "
    "confirmed: not sent again",
    "added": "rows that are the profile's first at the account",
    "updated": "rows of profiles that had a row at the account before",
    "queued": "rows written into batches (a retry's rows are not queued again)",
    "submitted": "rows handed to the service on their first submit",
    "confirmed": "rows the service confirmed",
    "failed": "rows that ended without landing (not found, out of attempts)",
    "dead": "of the failed rows, those out of attempts",
    "superseded": "rows not sent again because a later batch of the account carries the "
    "profile (a retry or newer values)",
    "not_final": "rows queued, being submitted, or waiting for the destination's answer",
}
# what became of a batch's rows: FATES add up to its row count, less the rows re-queued
FATES = ("confirmed", "failed", "dead", "superseded", "not_final")
# the stages of a mapping partition: the pipeline's name of each, by its Dagster asset's
STAGE_OF_ASSET = {
    "source_rows": "extract",
    "profile_updates": "transform",
    "profile_changes": "profiles",
}

Counts = Mapping[str, object]
# (batch id, row outcome status) -> rows
OutcomeCounts = Mapping[tuple[int, str], int]


def figure(counts: Counts, key: str) -> int:
    """An integer figure of a stage's counts; 0 when the stage did not report it."""
    value = counts.get(key)
    return int(value) if isinstance(value, int | float | str) else 0


def add_stage(into: dict[str, int], stage: str, counts: Counts, *, dry_run: bool = False) -> None:
    """Add one stage's counts (``extract``, ``transform``, ``profiles``) of one mapping
    partition to ``into`` (``MAPPING_COUNTS``). A dry run stops before the profile store, so
    its changed rows are the transform's rows out."""
    if stage == "extract":
        # every source row either came out of extraction or was rejected there
        into["read"] += figure(counts, "rows_out") + figure(counts, "rejected")
    elif stage == "transform":
        into["rejected"] += figure(counts, "rejected")
        into["merged"] += figure(counts, "duplicates_merged")
        if dry_run:
            into["changed"] += figure(counts, "rows_out")
    elif stage == "profiles":
        into["unchanged"] += figure(counts, "unchanged")
        # the profile store calls them superseded: lost to a later day's values
        into["outdated"] += figure(counts, "superseded")
        into["changed"] += figure(counts, "rows_out")


def fates(batch: Batch, outcomes: OutcomeCounts) -> dict[str, int]:
    """What became of ``batch``'s rows (``FATES``; ``dead`` is part of ``failed``). Rows
    re-queued into a retry count in the batch that settles them."""
    bad = sum(outcomes.get((batch.id, s), 0) for s in NOT_LANDED)
    requeued = outcomes.get((batch.id, "requeued"), 0)
    superseded = outcomes.get((batch.id, "superseded"), 0)
    rest = batch.row_count - requeued - superseded
    fate = dict.fromkeys(FATES, 0)
    fate.update(failed=bad, dead=outcomes.get((batch.id, "dead"), 0), superseded=superseded)
    if batch.state == COMPLETE:
        fate["confirmed"] = rest - bad
    elif batch.state == DEAD and not bad:
        # the whole batch died (no row named): attempts exhausted or its files unreadable
        fate["failed"] = fate["dead"] = rest
    elif batch.state not in FINAL_STATES:  # queued, on its way, or being re-queued
        fate["not_final"] = rest - bad
    return fate


def add_batch(
    into: dict[str, int], batch: Batch, outcomes: OutcomeCounts, *, first_send: bool
) -> None:
    """Add one batch's rows to ``into`` (``DELIVERY_COUNTS``, and any other ``FATES`` it
    holds). ``first_send``: the batch is not a retry of a batch that was submitted (a retry
    of one that never left is its first submit). A retry's rows are not queued again: the
    batch it retries queued them."""
    if batch.parent_id is None:
        into["queued"] += batch.row_count
    if batch.submitted_at is not None and first_send:
        into["submitted"] += batch.row_count
    add_fates(into, batch, outcomes)


def add_fates(into: dict[str, int], batch: Batch, outcomes: OutcomeCounts) -> None:
    """Add :func:`fates` of ``batch`` to the ``FATES`` that ``into`` holds."""
    for key, rows in fates(batch, outcomes).items():
        if key in into:
            into[key] += rows


def delivery_counts(
    batches: Iterable[Batch], outcomes: OutcomeCounts, *, known: Mapping[int, Batch]
) -> dict[str, int]:
    """``DELIVERY_COUNTS`` of ``batches`` (oldest first); ``known``: batches by id, to tell
    whether a retry's parent was submitted (a parent not known counts as never submitted)."""
    into = dict.fromkeys(DELIVERY_COUNTS, 0)
    for batch in batches:
        parent = known.get(batch.parent_id) if batch.parent_id else None
        add_batch(into, batch, outcomes, first_send=parent is None or parent.submitted_at is None)
    return into
