"""Adobe Target state: profiles (profiles.py), accepted batches, mbox calls, the daily quota and
the call-rate window."""

from __future__ import annotations

import collections
import datetime as dt
import gc
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from connector.sandbox.batchfile import BatchFile, BatchRejected
from connector.sandbox.options import SandboxOptions
from connector.sandbox.persistence import Persistence
from connector.sandbox.profiles import Profile, third_party_id_ok

log = logging.getLogger(__name__)

_APPLY_CHUNK = 50_000


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


def iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass
class Batch:
    """An accepted batch and, once applied, its outcome."""

    batch_id: str
    client: str
    version: str  # "v1" or "v2"
    sha256: str
    rows: int
    bytes: int
    accepted_at: float
    status_url: str
    stuck: bool = False
    applied: bool = False
    applied_at: float | None = None
    consumed: int = 0
    successful: int = 0
    not_found: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)

    def status(self, now: float, delay_s: float) -> str:
        if self.stuck:
            return "stuck"
        if self.applied and now >= self.accepted_at + delay_s:
            return "complete"
        return "incomplete"

    def summary(self, now: float, delay_s: float) -> dict[str, Any]:
        data = asdict(self)
        data.pop("failed_ids")
        data["status"] = self.status(now, delay_s)
        data["accepted_at_iso"] = iso(self.accepted_at)
        return data


class TargetStore:
    """Everything the Target emulation keeps; thread-safe (one lock, batches applied in order)."""

    def __init__(
        self,
        options: SandboxOptions,
        clock: Callable[[], float],
        persistence: Persistence | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        self.persistence = persistence
        self.lock = threading.RLock()
        # client -> id column ("pcId"/"thirdPartyId") -> id -> Profile
        self.profiles: dict[str, dict[str, dict[str, Profile]]] = collections.defaultdict(
            lambda: {"pcId": {}, "thirdPartyId": {}}
        )
        self.batches: dict[str, list[Batch]] = collections.defaultdict(list)  # full history
        self.batch_index: dict[str, Batch] = {}
        self.rows_by_day: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.rejections: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self._recent_calls: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self.calls: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        # The v2 override rule, per client: pending values dropped (per process), profiles
        # with pending attributes (kept up to date, so state never scans the profiles).
        self.v2_overridden_values: collections.Counter[str] = collections.Counter()
        self.v2_pending_profiles: collections.Counter[str] = collections.Counter()
        self.mbox_calls: collections.Counter[str] = collections.Counter()
        self._seq = itertools.count(1)
        if persistence is not None:
            self._load()

    # ---- persistence
    def _load(self) -> None:
        assert self.persistence is not None
        for client, id_column, pid, attrs in self.persistence.load_profiles():
            profile = Profile(**attrs)
            self.profiles[client][id_column][pid] = profile
            self.v2_pending_profiles[client] += profile.pending is not None
        for data in self.persistence.load_batches():
            batch = Batch(**data)
            if not batch.applied and not batch.stuck:
                # The process stopped before applying it; the body is gone: never onboarded.
                batch.stuck = True
            self._register(batch)
        self._seq = itertools.count(len(self.batch_index) + 1)

    def _register(self, batch: Batch) -> None:
        self.batches[batch.client].append(batch)
        self.batch_index[batch.batch_id] = batch
        self.rows_by_day[batch.client][utc_day(batch.accepted_at)] += batch.rows

    def _save_batch(self, batch: Batch) -> None:
        if self.persistence is not None:
            self.persistence.save_batch(batch.batch_id, batch.client, asdict(batch))

    # ---- metering
    def allow_call(self, client: str, endpoint: str) -> bool:
        """Count a metered call; False when the client is over calls_per_minute."""
        now = self.clock()
        with self.lock:
            recent = self._recent_calls[client]
            while recent and recent[0] <= now - 60.0:
                recent.popleft()
            if len(recent) >= self.options.calls_per_minute:
                self.calls[client]["rate_limited"] += 1
                return False
            recent.append(now)
            self.calls[client][endpoint] += 1
            return True

    def quota_used(self, client: str, now: float | None = None) -> int:
        day = utc_day(self.clock() if now is None else now)
        counter = self.rows_by_day.get(client)
        return counter[day] if counter is not None else 0  # a Counter: missing day -> 0

    def reject(self, client: str, version: str, message: str, body: bytes) -> None:
        with self.lock:
            self.rejections[client].append(
                {
                    "at": self.clock(),
                    "version": version,
                    "message": message,
                    "bytes": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                }
            )

    # ---- batches
    def accept(
        self,
        client: str,
        version: str,
        body: bytes,
        parsed: BatchFile,
        status_url: Callable[[str], str],
        stuck: bool,
    ) -> Batch:
        """Record an accepted batch (quota checked and taken atomically); raise BatchRejected."""
        rows = len(parsed)
        if rows == 0:
            raise BatchRejected("Batch is empty")
        if rows > self.options.max_batch_rows:
            raise BatchRejected(
                f"Batch has too many rows: {rows:,} "
                f"(limit {self.options.max_batch_rows:,} per batch)"
            )
        digest = hashlib.sha256(body).hexdigest()
        with self.lock:
            now = self.clock()
            used = self.quota_used(client, now)
            quota = self.options.daily_quota
            if used + rows > quota:
                raise BatchRejected(
                    f"Daily quota exceeded for client {client}: {used:,} of {quota:,} rows "
                    f"used today ({utc_day(now)} UTC), this batch has {rows:,} rows"
                )
            batch_id = f"{client}-{int(now * 1000)}-{next(self._seq)}"
            batch = Batch(
                batch_id=batch_id,
                client=client,
                version=version,
                sha256=digest,
                rows=rows,
                bytes=len(body),
                accepted_at=now,
                status_url=status_url(batch_id),
                stuck=stuck,
            )
            self._register(batch)
        self._save_batch(batch)
        log.info("accepted batch %s (%s, %d rows, stuck=%s)", batch_id, version, rows, stuck)
        return batch

    def lookup(self, client: str, batch_id: str) -> Batch | None:
        """The batch if its status is still kept: among the client's last N, within the TTL."""
        now = self.clock()
        with self.lock:
            recent = self.batches.get(client, [])[-self.options.status_window :]
        for batch in recent:
            if batch.batch_id == batch_id:
                if now - batch.accepted_at > self.options.status_ttl_s:
                    return None
                return batch
        return None

    def apply(self, batch: Batch, parsed: BatchFile) -> None:
        """Apply a batch's rows to the profiles (runs on the single worker thread)."""
        if batch.stuck:
            return
        # Creating 500,000 profiles would otherwise trigger many full collections.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._apply(batch, parsed)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _apply(self, batch: Batch, parsed: BatchFile) -> None:
        opts = self.options
        client = batch.client
        names = parsed.names
        ncols = len(names) + 1
        third_party = parsed.id_column == "thirdPartyId"
        create = batch.version == "v2"
        # v2 rows replace the profile's pending set (the override rule) unless v2_merge is on.
        override = create and not opts.v2_merge
        max_id = opts.max_third_party_id_chars
        limit = opts.max_profile_bytes
        table = self.profiles[client][parsed.id_column]
        touched: set[str] = set()
        failed_ids = batch.failed_ids
        successful = not_found = consumed = 0
        ts = self.clock()
        rows = parsed.rows()
        persist = self.persistence is not None
        while True:
            chunk = list(itertools.islice(rows, _APPLY_CHUNK))
            if not chunk:
                break
            dropped = pending_delta = 0
            with self.lock:
                for fields in chunk:
                    consumed += 1
                    pid = fields[0]
                    if (
                        not pid
                        or len(fields) > ncols
                        or (third_party and not third_party_id_ok(pid, max_id))
                    ):
                        failed_ids.append(pid)
                        continue
                    # Empty values are no part of a row: they never clear anything.
                    row = {n: v for n, v in zip(names, fields[1:], strict=False) if v}
                    profile = table.get(pid)
                    if profile is None:
                        if not create:
                            not_found += 1
                            continue
                        if not row:  # only empty values: skipped, nothing created
                            successful += 1
                            continue
                        profile = Profile.created_pending(row, ts) if override else Profile(row, ts)
                        chars = profile.chars + profile.pending_chars
                        # fits() only when it may not: a full batch creates 500,000 profiles.
                        if chars * 4 > limit and not profile.fits(limit, chars):
                            failed_ids.append(pid)
                            continue
                        table[pid] = profile
                        pending_delta += override
                    elif override:
                        if not profile.fits(
                            limit, profile.chars_if_overridden(row), row, override=True
                        ):
                            failed_ids.append(pid)
                            continue
                        had_pending = profile.pending is not None
                        dropped += profile.override(row, ts)
                        pending_delta += (profile.pending is not None) - had_pending
                    else:
                        if not profile.fits(limit, profile.chars_if_merged(row), row):
                            failed_ids.append(pid)
                            continue
                        had_pending = profile.pending is not None
                        profile.merge(row, ts)
                        pending_delta += (profile.pending is not None) - had_pending
                    successful += 1
                    if persist:
                        touched.add(pid)
                self.v2_overridden_values[client] += dropped
                self.v2_pending_profiles[client] += pending_delta
        self._save_profiles(client, parsed.id_column, touched)
        with self.lock:
            batch.consumed = consumed
            batch.successful = successful
            batch.not_found = not_found
            batch.failed = len(failed_ids)
            batch.applied = True
            batch.applied_at = self.clock()
        self._save_batch(batch)
        log.info(
            "applied batch %s: %d ok, %d not found, %d failed",
            batch.batch_id,
            successful,
            not_found,
            batch.failed,
        )

    def _save_profiles(self, client: str, id_column: str, pids: Collection[str]) -> None:
        if self.persistence is not None and pids:
            table = self.profiles[client][id_column]
            self.persistence.save_profiles(
                client,
                id_column,
                ((pid, table[pid].to_record(), *table[pid].pending_record()) for pid in pids),
            )

    # ---- mbox calls
    def mbox(
        self, client: str, ids: list[tuple[str, str]], params: dict[str, str]
    ) -> list[dict[str, Any]]:
        """An mbox call for one visitor, named by (id column, id) pairs; what happened per id.

        Each known profile's pending attributes become committed, then ``params`` (the call's
        ``profile.<name>`` parameters, empty ones left out) are written as committed; a
        profile is created only to hold params. Raises ``ValueError``, changing nothing, when
        params would make a profile larger than ``max_profile_bytes``. Call it on the batch
        worker (``Sandbox.run_in_order``) so it follows every batch accepted before it.
        """
        limit = self.options.max_profile_bytes
        ts = self.clock()
        results = []
        with self.lock:
            self.mbox_calls[client] += 1
            tables = self.profiles[client]
            for column, pid in ids:
                profile = tables[column].get(pid) or Profile({}, ts)
                if not profile.fits(limit, profile.chars_if_merged(params), params):
                    raise ValueError(
                        f"profile.* parameters would make the profile of {column} {pid} "
                        f"larger than {limit:,} bytes"
                    )
            for column, pid in ids:
                table = tables[column]
                found = table.get(pid)
                committed = 0
                if found is None:
                    if params:
                        table[pid] = Profile(dict(params), ts)
                else:
                    self.v2_pending_profiles[client] -= found.pending is not None
                    committed = found.commit()
                    if params:
                        found.merge(dict(params), ts)
                if pid in table:
                    self._save_profiles(client, column, [pid])
                results.append(
                    {
                        "idType": column,
                        "id": pid,
                        "found": found is not None,
                        "committed": committed,
                        "profileParams": len(params),
                    }
                )
        return results

    # ---- reads
    def profile(self, client: str, id_column: str, pid: str) -> Profile | None:
        clients = self.profiles.get(client)
        return None if clients is None else clients[id_column].get(pid)

    def snapshot(self) -> dict[str, Any]:
        """Per-client state for /_sandbox/state."""
        now = self.clock()
        delay = self.options.processing_delay_s
        with self.lock:
            clients = set(self.batches) | set(self.profiles) | set(self.calls)
            clients |= set(self.mbox_calls)
            return {
                client: {
                    "batches": [b.summary(now, delay) for b in self.batches.get(client, [])],
                    "rejected_batches": list(self.rejections.get(client, [])),
                    "quota": {
                        "limit": self.options.daily_quota,
                        "used_today": self.quota_used(client, now),
                        "today": utc_day(now),
                        "rows_by_day": dict(self.rows_by_day.get(client, {})),
                    },
                    "calls": dict(self.calls.get(client, {})),
                    "profiles": {
                        column: len(table)
                        for column, table in self.profiles.get(
                            client, {"pcId": {}, "thirdPartyId": {}}
                        ).items()
                    },
                    "v2_overridden_values": self.v2_overridden_values[client],
                    "v2_pending_profiles": self.v2_pending_profiles[client],
                    "mbox_calls": self.mbox_calls[client],
                }
                for client in sorted(clients)
            }
