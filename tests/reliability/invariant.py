"""The accounting invariant: nothing lost, nothing counted twice, caps kept, values landed.

``check(ledger, settings, sandbox=..., expected=...)`` reads the ledger (batches, row outcomes,
delivered digests, quota use), every batch manifest, the stage outputs and the sandbox's state,
and returns a ``Report`` with the counts and every violation found. ``report.ok`` is the verdict.

How a row is accounted for
--------------------------
A *row* is one identity in one attempt-1 batch manifest (what the batch stage queued). Its fate
is found by following its retry lineage (``parent_id``) batch by batch:

* batch ``queued`` / ``claimed`` / ``submitted``           -> pending
* batch ``complete`` and no row outcome                    -> delivered
* outcome ``requeued`` (or no outcome but a child batch carries the identity) -> the child
* outcome ``dead`` / ``not_found``, batch ``dead``         -> dead-lettered (a reason is required)
* outcome ``superseded``                                   -> superseded (a newer batch of the
  same mapping carries that identity: design decision, it is not re-sent; the newer batch
  must exist)
* anything else (a ``failed``/``stuck``/``expired`` batch whose rows went nowhere, a requeued
  row no child carries)                                    -> LOST (a violation)

A row reaching two terminal fates (two children carrying it) is DOUBLE (a violation).

Besides the lineage, the invariant checks that every row of a transform output
(``stage/<mapping>/<partition>/updates``, read by ``dedupe.read_updates``) went into some batch with the same digest
(rows equal to an in-flight batch's are skipped on purpose and are found there), that every
``Delivered`` digest is what the sandbox stores, that with ``expected`` (the latest source
values, from the scenario) every identity is either delivered with exactly those values or
still has them pending / dead-lettered, that neither the ledger's nor the sandbox's daily quota
nor the batch caps were exceeded, and that no batch content was accepted more often than the
ledger has attempts for it.
"""

from __future__ import annotations

import collections
import glob
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from connector import staging
from connector.dedupe import read_updates
from connector.digests import profile_digest
from connector.ledger import (
    CLAIMED,
    COMPLETE,
    DEAD,
    QUEUED,
    SUBMITTED,
    Batch,
    Delivered,
    Ledger,
    QuotaUse,
    RowOutcome,
)
from connector.settings import Settings

PENDING_STATES = (QUEUED, CLAIMED, SUBMITTED)
FATES = ("delivered", "dead", "superseded", "pending")


@dataclass
class Report:
    batches: int = 0
    batches_by_state: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # attempt-1 rows (identities queued by the batch stage)
    delivered: int = 0
    dead: int = 0
    superseded: int = 0
    pending: int = 0
    retried_rows: int = 0  # rows that needed more than one attempt
    ambiguous_resends: int = 0  # batch contents the sandbox accepted once per attempt, >1 time
    updates_rows: int = 0
    delivered_profiles: int = 0
    checked_in_sandbox: int = 0
    expected_identities: int = 0
    quota_used_max: int = 0
    sandbox_accepted_batches: int = 0
    sandbox_faults: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["violations"] = self.violations[:50]
        data["violation_count"] = len(self.violations)
        return data

    def fail(self, message: str) -> None:
        if len(self.violations) < 500:
            self.violations.append(message)

    def __str__(self) -> str:
        head = (
            f"rows {self.rows}: delivered {self.delivered}, dead {self.dead}, superseded "
            f"{self.superseded}, pending {self.pending} (retried {self.retried_rows}); batches "
            f"{self.batches_by_state}; quota max {self.quota_used_max}; "
            f"ambiguous resends {self.ambiguous_resends}"
        )
        if self.ok:
            return head + "; invariant held"
        return (
            head + f"; {len(self.violations)} VIOLATION(S):\n  " + "\n  ".join(self.violations[:30])
        )


def _manifest(batch: Batch) -> dict[str, dict[str, Any]] | None:
    try:
        table = pq.read_table(batch.manifest_path)
    except Exception:
        return None
    return {row["_identity"]: row for row in table.to_pylist()}


def check(
    ledger: Ledger,
    settings: Settings,
    *,
    sandbox: Any = None,
    expected: dict[tuple[str, str], dict[str, str]] | None = None,
    settled: bool = False,
) -> Report:
    """The invariant over the whole ledger; ``settled``: nothing may be pending any more."""
    report = Report()
    with ledger.session() as session:
        batches = list(session.scalars(select(Batch).order_by(Batch.id)))
        outcomes: dict[int, dict[str, RowOutcome]] = collections.defaultdict(dict)
        for o in session.scalars(select(RowOutcome)):
            outcomes[o.batch_id][o.identity] = o
        delivered = list(session.scalars(select(Delivered)))
        quota = list(session.scalars(select(QuotaUse)))
    report.batches = len(batches)
    report.batches_by_state = dict(collections.Counter(b.state for b in batches))
    by_id = {b.id: b for b in batches}
    children: dict[int, list[Batch]] = collections.defaultdict(list)
    for b in batches:
        if b.parent_id is not None:
            children[b.parent_id].append(b)
    manifests: dict[int, dict[str, dict[str, Any]]] = {}
    for b in batches:
        rows = _manifest(b)
        if rows is None:
            if b.state != DEAD:
                report.fail(f"batch {b.id} ({b.state}): manifest unreadable {b.manifest_path}")
            rows = {}
        elif len(rows) != b.row_count:
            report.fail(f"batch {b.id}: manifest has {len(rows)} rows, ledger says {b.row_count}")
        manifests[b.id] = rows

    def fates(batch: Batch, ident: str, depth: int = 0) -> list[tuple[str, Batch]]:
        if depth > 50:
            return [("LOST: lineage too deep", batch)]
        outcome = outcomes.get(batch.id, {}).get(ident)
        status = outcome.status if outcome is not None else None
        if batch.state in PENDING_STATES:
            return [("pending", batch)]
        if status == "superseded":
            return [("superseded", batch)]
        if status in ("dead", "not_found") or (batch.state == DEAD and status is None):
            reason = (outcome.reason if outcome is not None else None) or batch.message
            if not reason:
                return [("LOST: dead-lettered without a reason", batch)]
            return [("dead", batch)]
        carriers = [c for c in children.get(batch.id, []) if ident in manifests.get(c.id, {})]
        if status == "requeued" or (carriers and batch.state != COMPLETE):
            if not carriers:
                return [("LOST: requeued but no retry batch carries it", batch)]
            out: list[tuple[str, Batch]] = []
            for child in carriers:
                out += fates(child, ident, depth + 1)
            return out
        if batch.state == COMPLETE and status is None:
            return [("delivered", batch)]
        return [(f"LOST: batch {batch.state}, row outcome {status}", batch)]

    open_rows: set[tuple[str, str, str]] = set()
    for b in batches:
        if b.parent_id is not None:
            continue  # reached through its parent
        for ident in manifests[b.id]:
            report.rows += 1
            found = fates(b, ident)
            if len(found) != 1:
                report.fail(
                    f"{b.mapping}/{ident} from batch {b.id}: {len(found)} fates "
                    f"{[(f, x.id) for f, x in found]}"
                )
                continue
            fate, last = found[0]
            if fate.startswith("LOST"):
                report.fail(f"{b.mapping}/{ident} from batch {b.id}: {fate} (at batch {last.id})")
                continue
            if last.id != b.id:
                report.retried_rows += 1
            setattr(report, fate, getattr(report, fate) + 1)
            if fate in ("pending", "dead"):
                open_rows.add((b.mapping, ident, manifests[last.id][ident]["_digest"]))
            if fate == "pending" and settled:
                report.fail(f"{b.mapping}/{ident}: still pending in batch {last.id} ({last.state})")
            if fate == "superseded":
                newer = [
                    o
                    for o in batches
                    if o.mapping == b.mapping
                    and o.id not in (b.id, last.id)
                    and (o.partition, o.id) > (last.partition, last.id)
                    and ident in manifests.get(o.id, {})
                ]
                if not newer:
                    report.fail(f"{b.mapping}/{ident}: superseded but no newer batch carries it")

    _check_updates(report, settings, manifests, by_id)
    _check_quota_and_caps(report, settings, batches, quota)
    if sandbox is not None:
        _check_sandbox(
            report, settings, sandbox, batches, manifests, delivered, expected, open_rows
        )
    return report


def _check_updates(
    report: Report,
    settings: Settings,
    manifests: dict[int, dict[str, dict[str, Any]]],
    by_id: dict[int, Batch],
) -> None:
    """Every transform output row went into a batch (of any partition) with its digest."""
    queued: set[tuple[str, str, str]] = set()
    for batch_id, rows in manifests.items():
        mapping = by_id[batch_id].mapping
        for ident, row in rows.items():
            queued.add((mapping, ident, row["_digest"]))
    for path in glob.glob(str(Path(settings.stage_dir) / "*" / "*" / "updates")):
        base = Path(path).parent
        mapping = base.parent.name
        try:
            names = json.loads((base / "stage.json").read_text())["param_names"]
            parts = staging.parts(base / "mapped")
            schema = pa.schema([("_identity", pa.string()), ("_digest", pa.string())])
            rows = [
                r
                for rb in read_updates(parts, Path(path), names, schema=schema)
                for r in rb.to_pylist()
            ]
        except Exception as exc:
            report.fail(f"{path}: unreadable: {exc}")
            continue
        for row in rows:
            ident, digest = row["_identity"], row["_digest"]
            report.updates_rows += 1
            if (mapping, ident, digest) not in queued:
                report.fail(f"{mapping}/{ident}: in {path} but in no batch with digest {digest}")


def _check_quota_and_caps(
    report: Report, settings: Settings, batches: list[Batch], quota: list[QuotaUse]
) -> None:
    for q in quota:
        report.quota_used_max = max(report.quota_used_max, q.rows)
        if q.destination_key.startswith("target:") and q.rows > settings.daily_quota:
            report.fail(f"ledger quota {q.destination_key} {q.day}: {q.rows} > daily quota")
    for b in batches:
        if b.destination == "target":
            if b.row_count > settings.target.max_batch_rows:
                report.fail(f"batch {b.id}: {b.row_count} rows > cap")
            if b.byte_size >= settings.target.max_batch_bytes + 1:
                report.fail(f"batch {b.id}: {b.byte_size} bytes >= cap")


def _target_profile(sandbox: Any, client: str, ident: str) -> dict[str, str] | None:
    profile = sandbox.state.target.profile(client, "thirdPartyId", ident)
    return None if profile is None else {k: v for k, (v, _ts) in profile.attributes().items()}


def _copernica_profiles(sandbox: Any, database: str) -> dict[str, list[dict[str, str]]]:
    store = sandbox.state.copernica
    db = store.by_name.get(database)
    out: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    if db is None:
        return out
    with store.lock:
        for p in store.profiles.values():
            if p.database_id == db.id:
                out[p.fields.get("customerid", "")].append(dict(p.fields))
    return out


def _check_sandbox(
    report: Report,
    settings: Settings,
    sandbox: Any,
    batches: list[Batch],
    manifests: dict[int, dict[str, dict[str, Any]]],
    delivered: list[Delivered],
    expected: dict[tuple[str, str], dict[str, str]] | None,
    open_rows: set[tuple[str, str, str]],
) -> None:
    sandbox.wait_idle()
    snap = sandbox.snapshot()
    client = settings.target.client_code
    info = snap["target"]["clients"].get(client, {})
    limits = snap["target"]["limits"]
    for day, rows in info.get("quota", {}).get("rows_by_day", {}).items():
        if rows > limits["daily_quota"]:
            report.fail(f"sandbox quota {day}: {rows} rows > {limits['daily_quota']}")
    accepted = info.get("batches", [])
    report.sandbox_accepted_batches = len(accepted)
    for b in accepted:
        if b["rows"] > limits["max_batch_rows"] or b["bytes"] >= limits["max_batch_bytes"]:
            report.fail(f"sandbox batch {b['batch_id']} over the caps")
    totals: collections.Counter[str] = collections.Counter()
    for per in snap["faults"]["injected"].values():
        totals.update(per)
    report.sandbox_faults = dict(totals)
    if info.get("calls", {}).get("rate_limited"):
        report.fail(f"sandbox refused {info['calls']['rate_limited']} call(s) over calls/minute")
    # no content accepted more often than the ledger has submitted attempts of it
    attempts: collections.Counter[str] = collections.Counter(
        b.sha256 for b in batches if b.destination == "target" and b.submitted_at is not None
    )
    accepted_by_sha = collections.Counter(b["sha256"] for b in accepted)
    for sha, n in accepted_by_sha.items():
        if n > max(attempts.get(sha, 0), 1) or (n > 1 and attempts.get(sha, 0) == 0):
            report.fail(f"batch content {sha[:12]} accepted {n} times, {attempts[sha]} attempt(s)")
        elif n > 1:
            report.ambiguous_resends += 1
    if not attempts and accepted_by_sha:
        report.fail("sandbox accepted batches the ledger never sent")
    # delivered digests are what the sandbox holds
    by_batch = {b.id: b for b in batches}
    cop = _copernica_profiles(sandbox, settings.copernica.database)
    report.delivered_profiles = len(delivered)
    latest: dict[tuple[str, str], Delivered] = {(d.mapping, d.identity): d for d in delivered}
    for (mapping, ident), d in latest.items():
        batch = by_batch.get(d.batch_id or -1)
        row = manifests.get(d.batch_id or -1, {}).get(ident)
        if batch is None or row is None:
            report.fail(f"{mapping}/{ident}: delivered by batch {d.batch_id} without its row")
            continue
        values = {k: v for k, v in row.items() if not k.startswith("_")}
        if row["_digest"] != d.digest:
            report.fail(f"{mapping}/{ident}: delivered digest differs from its batch row")
        if expected is not None and (mapping, ident) in expected:
            want = expected[(mapping, ident)]
            if d.digest != profile_digest(list(want), list(want.values())):
                continue  # newer values pending or dead-lettered: checked below
        stored = _stored(sandbox, batch, ident, client, cop)
        report.checked_in_sandbox += 1
        if stored is None:
            report.fail(f"{mapping}/{ident}: delivered but not in the sandbox")
            continue
        for name, value in values.items():
            if value not in (None, "") and stored.get(name) != value:
                report.fail(
                    f"{mapping}/{ident}: {name} stored {stored.get(name)!r}, delivered {value!r}"
                )
    for ident, found in cop.items():
        if len(found) > 1:
            report.fail(f"copernica: {len(found)} profiles for customerid {ident!r}")
    if expected is None:
        return
    pending_or_dead: set[tuple[str, str, str]] = set()
    for b in batches:
        final_dead = b.state == DEAD
        for ident, row in manifests[b.id].items():
            if b.state in PENDING_STATES or final_dead:
                pending_or_dead.add((b.mapping, ident, row["_digest"]))
    pending_or_dead |= open_rows
    report.expected_identities = len(expected)
    for (mapping, ident), want in expected.items():
        digest = profile_digest(list(want), list(want.values()))
        d = latest.get((mapping, ident))
        if d is not None and d.digest == digest:
            continue
        if (mapping, ident, digest) in pending_or_dead:
            continue
        report.fail(
            f"{mapping}/{ident}: latest source values neither delivered, pending nor dead "
            f"(delivered digest {d.digest[:8] if d else None})"
        )


def _stored(
    sandbox: Any, batch: Batch, ident: str, client: str, cop: dict[str, list[dict[str, str]]]
) -> dict[str, str] | None:
    if batch.destination == "target":
        return _target_profile(sandbox, client, ident)
    found = cop.get(ident)
    return found[0] if found else None
