"""The accounting invariant: every profile at every account landed, or the ledger says why not.

``check(ledger, settings, sandbox=..., expected=...)`` reads the ledger (batches, row outcomes,
delivered digests, quota use, profile stores), every batch manifest and batch file, the stage
outputs and the sandbox's state, and returns a ``Report`` with the counts and every violation
found. ``report.ok`` is the verdict.

The unit: a profile at an account
---------------------------------
What the connector owes a destination account is, for every identity its mappings' profile
stores hold, the store's current value of every param of the account (the union of the
params of the mappings that feed it). Each such profile ends in exactly one of:

* ``landed``    the last confirmed digest (``Delivered``) is the digest of the current
                values, and the destination, read back, holds exactly those values for
                every managed param (a param no store ever had a value for is not set there);
* ``in_flight`` the newest row written for the profile (highest batch id) is in a queued,
                claimed or submitted batch and carries exactly the current values;
* ``unbuilt``   the profile changed in a store after the account's last outbox build
                (``_version > built_version``): the next build takes it;
* ``retrying``  its newest row, with the current values, is in a batch a process left
                failed/stuck/expired before re-queueing it (the next drain finishes it);
* ``dead``      its newest row, with the current values, was dead-lettered with a reason.

Anything else is a violation (LOST): e.g. the current values in no row at all, a row with
older values on its way and nothing newer queued, confirmed but read back different. With
``settled`` only ``landed`` and ``dead`` are allowed.

The stores themselves are checked against what went into them: every row of every transform
output (``stage/<mapping>/<partition>/updates``) is in its mapping's store, each non-empty
value either stored from that day or replaced by a later day's; with ``expected`` (the latest
source values, from the scenario's world) each mapping's store holds exactly those values and
no other identity.

The rows of batches
-------------------
A *row* is one identity in one attempt-1 batch (what an outbox build queued). Its fate is
found by following its retry lineage (``parent_id``) batch by batch:

* batch ``queued`` / ``claimed`` / ``submitted``             -> pending
* batch ``complete`` and no row outcome                      -> delivered
* outcome ``requeued`` (or no outcome but a child carries it) -> the child
* outcome ``dead`` / ``not_found``, batch ``dead``           -> dead-lettered (reason required)
* outcome ``superseded``                                     -> superseded (a newer batch of the
  account, outside the row's own lineage, carries the identity; it must exist)
* batch ``failed``/``stuck``/``expired``, rows not re-queued yet -> retrying (pending)
* anything else                                              -> LOST (a violation)

A row reaching two fates (two children carrying it) is a violation, and so is a row of a retry
batch that no parent row led to (re-sent twice), a retry of a batch never sent (an attempt
spent without a send), and a row whose ``_digest`` is not the digest of the values its batch
file holds. Besides: every ``Delivered`` digest is its batch row's; neither the ledger's quota
(rows charged in any 24 hours) nor the sandbox's daily quota nor the batch caps were exceeded;
no batch content was accepted more often than the ledger has attempts for it.
"""

from __future__ import annotations

import collections
import datetime as dt
import glob
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from connector.columns import DIGEST, IDENTITY, SOURCE_REF
from connector.digests import profile_digest
from connector.ledger import (
    CLAIMED,
    COMPLETE,
    DEAD,
    EXPIRED,
    FAILED,
    QUEUED,
    STUCK,
    SUBMITTED,
    Batch,
    Delivered,
    Ledger,
    ProfileStore,
    RowOutcome,
)
from connector.outbox import manifests as manifests_mod
from connector.profiles import merge as profile_merge
from connector.profiles import staging
from connector.profiles import store as profile_store
from connector.profiles.dedupe import read_updates
from connector.settings import Settings

PENDING_STATES = (QUEUED, CLAIMED, SUBMITTED)
QUOTA_WINDOW = dt.timedelta(hours=24)
RETRYING_STATES = (FAILED, STUCK, EXPIRED)
ROW_FATES = ("delivered", "dead", "superseded", "pending")
PROFILE_FATES = ("landed", "in_flight", "unbuilt", "retrying", "dead")
SETTLED_FATES = ("landed", "dead")


@dataclass
class Report:
    batches: int = 0
    batches_by_state: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # attempt-1 rows (one identity in one batch an outbox build queued)
    delivered: int = 0
    dead: int = 0
    superseded: int = 0
    pending: int = 0
    retried_rows: int = 0  # rows that needed more than one attempt
    ambiguous_resends: int = 0  # batch contents the sandbox applied more than once
    duplicate_rows: int = 0  # rows (profile, values) applied again by another ledger batch
    updates_rows: int = 0  # transform output rows checked against the profile stores
    profiles: int = 0  # identities of the accounts' profile stores
    profile_fates: dict[str, int] = field(default_factory=dict)
    delivered_profiles: int = 0
    checked_in_sandbox: int = 0
    expected_identities: int = 0
    quota_used_max: int = 0
    sandbox_accepted_batches: int = 0
    sandbox_faults: dict[str, int] = field(default_factory=dict)
    v2_overridden_values: int = 0  # values the sandbox's v2 override rule dropped (read-back
    # of the final state decides whether anything stayed lost)
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
            f"profiles {self.profiles}: {self.profile_fates}; rows {self.rows}: delivered "
            f"{self.delivered}, dead {self.dead}, superseded {self.superseded}, pending "
            f"{self.pending} (retried {self.retried_rows}); batches {self.batches_by_state}; "
            f"quota max {self.quota_used_max}; ambiguous resends {self.ambiguous_resends}, "
            f"duplicate rows {self.duplicate_rows}; "
            f"v2 overridden values {self.v2_overridden_values}"
        )
        if self.ok:
            return head + "; invariant held"
        return (
            head + f"; {len(self.violations)} VIOLATION(S):\n  " + "\n  ".join(self.violations[:30])
        )


# --------------------------------------------------------------------------------------
# What the ledger and the outbox hold


def _norm(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


@dataclass
class Row:
    """One line of one batch: its identity's values as the batch file holds them."""

    batch: Batch
    identity: str
    digest: str
    values: dict[str, str | None]


def _batch_rows(report: Report, batch: Batch) -> dict[str, Row] | None:
    """The batch's rows with their values decoded from the batch file; None: unreadable."""
    try:
        table = manifests_mod.read(batch.manifest_path)
        names = manifests_mod.param_names(table)
        table = manifests_mod.with_values(batch.path, table)
    except Exception as exc:
        if batch.state != DEAD:
            report.fail(f"batch {batch.id} ({batch.state}): rows unreadable: {exc}")
        return None
    rows: dict[str, Row] = {}
    for record in table.to_pylist():
        ident = record[IDENTITY]
        values = {n: _norm(record[n]) for n in names}
        if ident in rows:
            report.fail(f"batch {batch.id}: {ident!r} twice in one batch")
        want = profile_digest(names, [values[n] for n in names])
        if record[DIGEST] != want:
            report.fail(
                f"batch {batch.id}/{ident}: _digest {record[DIGEST][:8]} is not the digest of "
                f"the values in the batch file ({want[:8]})"
            )
        rows[ident] = Row(batch, ident, record[DIGEST], values)
    if len(rows) != batch.row_count:
        report.fail(
            f"batch {batch.id}: {len(rows)} rows in its files, ledger says {batch.row_count}"
        )
    return rows


@dataclass
class Account:
    """One destination account's profiles as its mappings' stores hold them now."""

    key: str
    stores: list[profile_store.StoreRef]
    names: list[str]
    identity_type: str
    current: dict[str, dict[str, str | None]] = field(default_factory=dict)
    unbuilt: set[str] = field(default_factory=set)

    def digest(self, ident: str) -> str:
        values = self.current[ident]
        return profile_digest(self.names, [values[n] for n in self.names])


def _accounts(
    report: Report, ledger: Ledger
) -> tuple[dict[str, Account], dict[str, dict[str, dict[str, Any]]]]:
    """Every account with a store, and each mapping's store rows (``{mapping: {identity: row}}``)."""
    with ledger.session() as session:
        keys = sorted(set(session.scalars(select(ProfileStore.destination_key))))
    accounts: dict[str, Account] = {}
    by_mapping: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        refs = profile_store.stores(ledger, key)
        if not refs:
            continue
        names = [n for ref in refs for n in ref.param_names]
        if len(set(names)) != len(names):
            report.fail(f"{key}: a param is owned by two mappings: {names}")
        id_types = {ref.identity_type for ref in refs}
        if len(id_types) != 1:
            report.fail(f"{key}: mappings with different identity types {sorted(id_types)}")
        acct = Account(key, refs, names, sorted(id_types)[0])
        for ref in refs:
            rows: dict[str, dict[str, Any]] = {}
            for row in profile_store.snapshot_rows(ref):
                ident = row[IDENTITY]
                if ident in rows:
                    report.fail(f"{key}/{ref.mapping}: store v{ref.version} holds {ident!r} twice")
                rows[ident] = row
                values = acct.current.setdefault(ident, dict.fromkeys(names))
                for name in ref.param_names:
                    values[name] = _norm(row[name])
                if int(row[profile_merge.VERSION] or 0) > ref.built_version:
                    acct.unbuilt.add(ident)
            if ref.mapping in by_mapping:
                report.fail(f"mapping {ref.mapping} has stores at two accounts")
            by_mapping[ref.mapping] = rows
        accounts[key] = acct
    return accounts, by_mapping


# --------------------------------------------------------------------------------------
# The check


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
    report.batches = len(batches)
    report.batches_by_state = dict(collections.Counter(b.state for b in batches))
    rows: dict[int, dict[str, Row]] = {}
    for b in batches:
        rows[b.id] = _batch_rows(report, b) or {}
    accounts, store_rows = _accounts(report, ledger)
    fates = _check_rows(report, batches, rows, outcomes, settled)
    _check_updates(report, settings, store_rows)
    if expected is not None:
        _check_expected(report, store_rows, expected)
    _check_quota_and_caps(report, settings, batches)
    readback = None
    if sandbox is not None:
        cop = accounts.get(f"copernica:{settings.copernica.database}")
        match = cop.identity_type if cop is not None else "customerid"
        readback = _check_sandbox(report, settings, sandbox, batches, match)
        report.duplicate_rows = _duplicate_rows(batches, rows, readback.applied)
    _check_delivered(report, batches, rows, delivered, accounts)
    _check_profiles(report, accounts, batches, rows, fates, delivered, readback, settled)
    return report


def _descendants(batch_id: int, children: dict[int, list[Batch]]) -> set[int]:
    out: set[int] = set()
    todo = [batch_id]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.id not in out:
                out.add(child.id)
                todo.append(child.id)
    return out


def _check_rows(
    report: Report,
    batches: list[Batch],
    rows: dict[int, dict[str, Row]],
    outcomes: dict[int, dict[str, RowOutcome]],
    settled: bool,
) -> dict[tuple[int, str], str]:
    """Each attempt-1 row's lineage to one fate; returns the local fate of every batch row
    reached (``{(batch id, identity): fate}``)."""
    by_id = {b.id: b for b in batches}
    children: dict[int, list[Batch]] = collections.defaultdict(list)
    for b in batches:
        if b.parent_id is not None:
            children[b.parent_id].append(b)
            parent = by_id.get(b.parent_id)
            if parent is None:
                report.fail(f"batch {b.id}: parent {b.parent_id} is not in the ledger")
                continue
            if parent.submitted_at is None:
                report.fail(
                    f"batch {b.id} (attempt {b.attempt}) retries batch {parent.id}, which was "
                    "never sent: an attempt spent without a send"
                )
            if b.attempt != parent.attempt + 1:
                report.fail(f"batch {b.id}: attempt {b.attempt} retries attempt {parent.attempt}")
            if b.destination_key != parent.destination_key:
                report.fail(f"batch {b.id}: retries batch {parent.id} of another account")
    local: dict[tuple[int, str], str] = {}

    def fates(batch: Batch, ident: str, depth: int = 0) -> list[tuple[str, Batch]]:
        if depth > 50:
            return [("LOST: lineage too deep", batch)]
        if (batch.id, ident) in local:
            return [(f"LOST: reached twice (batch {batch.id})", batch)]
        outcome = outcomes.get(batch.id, {}).get(ident)
        status = outcome.status if outcome is not None else None
        carriers = [c for c in children.get(batch.id, []) if ident in rows.get(c.id, {})]

        def mark(fate: str) -> list[tuple[str, Batch]]:
            local[(batch.id, ident)] = fate
            return [(fate, batch)]

        if batch.state in PENDING_STATES:
            return mark("pending")
        if status == "superseded":
            return mark("superseded")
        if status in ("dead", "not_found") or (batch.state == DEAD and status is None):
            reason = (outcome.reason if outcome is not None else None) or batch.message
            if not reason:
                return mark("LOST: dead-lettered without a reason")
            return mark("dead")
        if status == "requeued" or (carriers and batch.state != COMPLETE):
            if not carriers:
                return mark("LOST: requeued but no retry batch carries it")
            local[(batch.id, ident)] = "requeued"
            out: list[tuple[str, Batch]] = []
            for child in carriers:
                out += fates(child, ident, depth + 1)
            return out
        if batch.state == COMPLETE and status is None:
            return mark("delivered")
        if batch.state in RETRYING_STATES and status is None:
            return mark("retrying")
        return mark(f"LOST: batch {batch.state}, row outcome {status}")

    for b in batches:
        if b.parent_id is not None:
            continue  # reached through its parent
        for ident in rows[b.id]:
            report.rows += 1
            found = fates(b, ident)
            if len(found) != 1:
                report.fail(
                    f"{b.destination_key}/{ident} from batch {b.id}: {len(found)} fates "
                    f"{[(f, x.id) for f, x in found]}"
                )
                continue
            fate, last = found[0]
            if fate.startswith("LOST"):
                report.fail(
                    f"{b.destination_key}/{ident} from batch {b.id}: {fate} (at batch {last.id})"
                )
                continue
            if last.id != b.id:
                report.retried_rows += 1
            if fate == "retrying":
                fate = "pending"
            setattr(report, fate, getattr(report, fate) + 1)
            if fate == "pending" and settled:
                report.fail(
                    f"{b.destination_key}/{ident}: still pending in batch {last.id} ({last.state})"
                )
            if fate == "superseded":
                mine = {last.id} | _descendants(last.id, children)
                newer = [
                    o
                    for o in batches
                    if o.destination_key == b.destination_key
                    and o.id > last.id
                    and o.id not in mine
                    and ident in rows.get(o.id, {})
                ]
                if not newer:
                    report.fail(
                        f"{b.destination_key}/{ident}: superseded at batch {last.id} but no newer "
                        "batch carries it"
                    )
    for b in batches:
        if b.parent_id is None:
            continue
        for ident in rows[b.id]:
            if (b.id, ident) not in local:
                parent_row = outcomes.get(b.parent_id, {}).get(ident)
                report.fail(
                    f"{b.destination_key}/{ident}: row of retry batch {b.id} that its parent "
                    f"{b.parent_id} does not account for (parent row: "
                    f"{parent_row.status if parent_row else None}): sent twice"
                )
    return local


def _check_updates(
    report: Report, settings: Settings, store_rows: dict[str, dict[str, dict[str, Any]]]
) -> None:
    """Every transform output row is in its mapping's store: each non-empty value stored from
    its day, or replaced by a later day's value."""
    for path in glob.glob(str(Path(settings.stage_dir) / "*" / "*" / "*" / "updates")):
        base = Path(path).parent  # <mapping>/<partition>/<run>
        mapping, partition = base.parent.parent.name, base.parent.name
        try:
            names = json.loads((base / "stage.json").read_text())["param_names"]
            parts = staging.parts(base / "mapped")
            schema = pa.schema(
                [(IDENTITY, pa.string()), (SOURCE_REF, pa.string())]
                + [(n, pa.string()) for n in names]
            )
            day = [
                r
                for rb in read_updates(parts, Path(path), names, schema=schema)
                for r in rb.to_pylist()
            ]
        except Exception as exc:
            report.fail(f"{path}: unreadable: {exc}")
            continue
        store = store_rows.get(mapping)
        if store is None:
            if day:
                report.fail(f"{mapping}: {len(day)} row(s) of {partition} and no profile store")
            continue
        for row in day:
            report.updates_rows += 1
            ident = row[IDENTITY]
            held = store.get(ident)
            if held is None:
                report.fail(f"{mapping}/{ident}: in {partition}'s updates, not in the store")
                continue
            for name in names:
                value = _norm(row[name])
                if value is None:
                    continue
                stored, stored_day = held.get(name), held.get(profile_merge.day_column(name))
                if stored_day is None or stored_day < partition:
                    report.fail(
                        f"{mapping}/{ident}: {name}={value!r} of {partition} never merged "
                        f"(store: {stored!r} from {stored_day})"
                    )
                elif stored_day == partition and stored != value:
                    report.fail(
                        f"{mapping}/{ident}: {name} of {partition} is {value!r}, the store "
                        f"holds {stored!r} from that day"
                    )


def _check_expected(
    report: Report,
    store_rows: dict[str, dict[str, dict[str, Any]]],
    expected: dict[tuple[str, str], dict[str, str]],
) -> None:
    """Each mapping's store holds exactly the latest source values of the scenario's world."""
    report.expected_identities = len(expected)
    for (mapping, ident), want in expected.items():
        held = store_rows.get(mapping, {}).get(ident)
        if held is None:
            report.fail(f"{mapping}/{ident}: in the source, not in the profile store")
            continue
        for name, value in want.items():
            if _norm(held.get(name)) != _norm(value):
                report.fail(
                    f"{mapping}/{ident}: store holds {name}={held.get(name)!r}, the source's "
                    f"latest is {value!r}"
                )
    for mapping in {m for m, _ in expected}:
        for ident in store_rows.get(mapping, {}):
            if (mapping, ident) not in expected:
                report.fail(f"{mapping}/{ident}: in the profile store, never in the source")


def _check_quota_and_caps(report: Report, settings: Settings, batches: list[Batch]) -> None:
    """No 24-hour period holds more than the quota of charged rows per Target account (the
    quota is per rolling 24 hours: ``delivery.claims``); no batch is over the caps."""
    charges: dict[str, list[tuple[dt.datetime, int]]] = collections.defaultdict(list)
    for b in batches:
        at = b.claimed_at or b.submitted_at  # what claims charge; None: returned unsent
        if at is not None:
            at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
            charges[b.destination_key].append((at, b.row_count))
    for key, charged in charges.items():
        charged.sort()
        start, rows = 0, 0
        for at, n in charged:  # the busiest window ends at a charge: (at - 24 h, at]
            rows += n
            while charged[start][0] <= at - QUOTA_WINDOW:
                rows -= charged[start][1]
                start += 1
            report.quota_used_max = max(report.quota_used_max, rows)
            if key.startswith("target:") and rows > settings.daily_quota:
                report.fail(
                    f"ledger quota {key}: {rows} rows in the 24 hours up to {at.isoformat()} "
                    f"> {settings.daily_quota}"
                )
                break
    for b in batches:
        if b.destination == "target":
            if b.row_count > settings.target.max_batch_rows:
                report.fail(f"batch {b.id}: {b.row_count} rows > cap")
            if b.byte_size >= settings.target.max_batch_bytes + 1:
                report.fail(f"batch {b.id}: {b.byte_size} bytes >= cap")


@dataclass
class Readback:
    """The sandbox's profiles: Target by identity type and id, Copernica by match field."""

    sandbox: Any
    client: str
    copernica: dict[str, list[dict[str, str]]]
    applied: set[str]  # the Target batches the sandbox applied, by its batch id

    def stored(self, acct: Account, ident: str) -> dict[str, str] | None:
        if acct.key.startswith("target:"):
            profile = self.sandbox.state.target.profile(self.client, acct.identity_type, ident)
            if profile is None:
                return None
            return {k: v for k, (v, _ts) in profile.attributes().items()}
        found = self.copernica.get(ident)
        return found[0] if found else None


def _copernica_profiles(sandbox: Any, database: str, match: str) -> dict[str, list[dict[str, str]]]:
    store = sandbox.state.copernica
    db = store.by_name.get(database)
    out: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    if db is None:
        return out
    with store.lock:
        for p in store.profiles.values():
            if p.database_id == db.id:
                out[p.fields.get(match, "")].append(dict(p.fields))
    return out


def _check_sandbox(
    report: Report, settings: Settings, sandbox: Any, batches: list[Batch], match: str
) -> Readback:
    """Quotas, caps and accepted contents at the sandbox; its profiles for the read-back
    (``match``: the Copernica account's match field)."""
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
    report.v2_overridden_values = int(info.get("v2_overridden_values") or 0)
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
    # a content the service applied twice (a stuck batch is accepted but never applied, so
    # its retry is no duplicate): only an outcome the ledger could not know explains one
    applied_by_sha = collections.Counter(b["sha256"] for b in accepted if b.get("applied"))
    report.ambiguous_resends = sum(1 for n in applied_by_sha.values() if n > 1)
    if not attempts and accepted_by_sha:
        report.fail("sandbox accepted batches the ledger never sent")
    cop = _copernica_profiles(sandbox, settings.copernica.database, match)
    for ident, found in cop.items():
        if len(found) > 1:
            report.fail(f"copernica: {len(found)} profiles for {match} {ident!r}")
    return Readback(
        sandbox, client, cop, {str(b["batch_id"]) for b in accepted if b.get("applied")}
    )


def _duplicate_rows(
    batches: list[Batch], rows: dict[int, dict[str, Row]], applied: set[str]
) -> int:
    """Rows (profile, values) the sandbox applied again from another ledger batch."""
    seen: collections.Counter[tuple[str, str, str]] = collections.Counter(
        (b.destination_key, ident, row.digest)
        for b in batches
        if b.remote_batch_id is not None and b.remote_batch_id in applied
        for ident, row in rows[b.id].items()
    )
    return sum(n - 1 for n in seen.values())


def _check_delivered(
    report: Report,
    batches: list[Batch],
    rows: dict[int, dict[str, Row]],
    delivered: list[Delivered],
    accounts: dict[str, Account],
) -> None:
    """Every confirmed digest is the one its batch row carries, of a profile a store holds."""
    by_id = {b.id: b for b in batches}
    report.delivered_profiles = len(delivered)
    for d in delivered:
        batch = by_id.get(d.batch_id or -1)
        row = rows.get(d.batch_id or -1, {}).get(d.identity)
        if batch is None or row is None:
            report.fail(
                f"{d.destination_key}/{d.identity}: delivered by batch {d.batch_id} without its row"
            )
            continue
        if batch.destination_key != d.destination_key:
            report.fail(f"{d.destination_key}/{d.identity}: confirmed by another account's batch")
        if row.digest != d.digest:
            report.fail(f"{d.destination_key}/{d.identity}: delivered digest differs from its row")
        acct = accounts.get(d.destination_key)
        if acct is None or d.identity not in acct.current:
            report.fail(f"{d.destination_key}/{d.identity}: delivered, in no profile store")


def _check_profiles(
    report: Report,
    accounts: dict[str, Account],
    batches: list[Batch],
    rows: dict[int, dict[str, Row]],
    local: dict[tuple[int, str], str],
    delivered: list[Delivered],
    readback: Readback | None,
    settled: bool,
) -> None:
    """Each profile at each account: landed with its current values, or why not."""
    confirmed = {(d.destination_key, d.identity): d for d in delivered}
    newest: dict[tuple[str, str], Row] = {}
    for b in batches:  # by id: the newest row written for a profile wins
        for ident, row in rows[b.id].items():
            newest[(b.destination_key, ident)] = row
    counts: collections.Counter[str] = collections.Counter()
    for key, acct in accounts.items():
        for ident, values in acct.current.items():
            report.profiles += 1
            fate = _profile_fate(
                report,
                acct,
                ident,
                values,
                newest.get((key, ident)),
                confirmed.get((key, ident)),
                local,
                readback,
            )
            if fate is None:
                continue
            counts[fate] += 1
            if settled and fate not in SETTLED_FATES:
                report.fail(f"{key}/{ident}: {fate} (nothing may be pending any more)")
    report.profile_fates = dict(counts)


def _profile_fate(
    report: Report,
    acct: Account,
    ident: str,
    values: dict[str, str | None],
    latest: Row | None,
    confirmed: Delivered | None,
    local: dict[tuple[int, str], str],
    readback: Readback | None,
) -> str | None:
    where = f"{acct.key}/{ident}"
    digest = acct.digest(ident)
    latest_is_current = (
        latest is not None
        and all(latest.values.get(n) == values[n] for n in acct.names)
        and set(latest.values) == set(acct.names)
    )
    if latest is not None and latest.batch.state in PENDING_STATES:
        if latest_is_current:
            return "in_flight"
        if ident in acct.unbuilt:
            return "unbuilt"
        report.fail(
            f"{where}: batch {latest.batch.id} ({latest.batch.state}) carries other values "
            f"{latest.values} than the current {values}, and nothing newer is queued"
        )
        return None
    if confirmed is not None and confirmed.digest == digest:
        if readback is not None:
            report.checked_in_sandbox += 1
            stored = readback.stored(acct, ident)
            if stored is None:
                report.fail(f"{where}: confirmed, not at the destination")
                return None
            wrong = {
                n: (stored.get(n), values[n])
                for n in acct.names
                if _norm(stored.get(n)) != values[n]
            }
            if wrong:
                report.fail(f"{where}: destination holds != current values {wrong}")
                return None
        return "landed"
    if ident in acct.unbuilt:
        return "unbuilt"
    if latest is None:
        report.fail(f"{where}: current values {values} in no batch at all")
        return None
    fate = local.get((latest.batch.id, ident))
    if latest_is_current and fate == "dead":
        return "dead"
    if latest_is_current and fate == "retrying":
        return "retrying"
    report.fail(
        f"{where}: neither landed, queued nor dead: newest row in batch {latest.batch.id} "
        f"({latest.batch.state}, row {fate}, {'current' if latest_is_current else 'other'} "
        f"values), confirmed digest {confirmed.digest[:8] if confirmed else None}, current "
        f"{digest[:8]}"
    )
    return None
