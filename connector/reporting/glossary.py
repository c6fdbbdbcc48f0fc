"""The words the CLI's summaries and views use for what became of rows, each defined once.

``connector sync``, ``status`` and ``trace`` print these definitions under their tables and
``docs/cli-json.md`` refers to them, so one word never means two things: a day's values that a
later day overrides are *outdated*; a batch (or a batch's row) whose profiles a later batch of
the account carries is *superseded*.
"""

from __future__ import annotations

from collections.abc import Iterable

TERMS = {
    # what became of a mapping's source rows (sync, per mapping)
    "read": "source rows read = rejected + merged + unchanged + outdated + changed",
    "rejected": "a row the mapping refused (see the report's rejects CSV)",
    "merged": "an earlier row of the same identity that day, merged into the later one",
    "unchanged": "the day held what the profile store already had",
    "outdated": "a later day already gave the identity newer values (the store keeps those)",
    "changed": "the profile store took new values",
    # what became of the changed profiles at an account (sync, per destination account)
    "already sent": "the same values are confirmed or on their way",
    "queued": "written to the outbox by this sync = confirmed + failed + superseded + not final",
    "submitted": "sent to the destination for the first time by this sync",
    "confirmed": "the destination confirmed the row",
    "failed": "the row did not land: failed after its last attempt (dead) or not found",
    "superseded": "a later batch of the account carries the profile (a retry or newer values)",
    "not final": "queued, being submitted, or waiting for the destination's answer",
}

# why a drain stopped submitting (``delivery.DrainResult.stopped_because``)
STOPPED_BECAUSE = {
    "empty": "nothing left to submit",
    "window": "outside the off-peak window (CONNECTOR_OFF_PEAK)",
    "quota": "the rolling 24-hour quota is used up",
    "in_flight": "as many batches on their way as the destination allows",
    "overlap": "the next batch waits for one carrying the same profiles",
    "unavailable": "the destination was unreachable or kept failing",
    "auth": "the destination refused the account's setup (credentials, fields)",
}


def explain(*words: str) -> str:
    """``word = definition`` for each of ``words``, joined by semicolons."""
    return "; ".join(f"{word}: {TERMS[word]}" for word in words)


def explained(words: Iterable[str]) -> list[str]:
    """One ``word: definition`` line per word (the ones ``TERMS`` defines)."""
    return [f"{word}: {TERMS[word]}" for word in words if word in TERMS]
