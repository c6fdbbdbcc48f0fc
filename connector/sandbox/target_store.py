"""Adobe Target state: profiles, accepted batches, the daily quota and the call-rate window."""

from __future__ import annotations

import collections
import datetime as dt
import gc
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from connector.sandbox.batchfile import BatchFile, BatchRejected
from connector.sandbox.options import SandboxOptions
from connector.sandbox.persistence import Persistence

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


class Profile:
    """One visitor profile: attribute values, when each was last modified, and their size.

    Compact on purpose (a full-size batch creates 500,000 of them): attributes written by the
    latest update share ``ts``; only older ones carry their own time in ``older``.
    """

    __slots__ = ("chars", "older", "ts", "values")

    def __init__(
        self, values: dict[str, str], ts: float, older: dict[str, float] | None = None
    ) -> None:
        self.values = values
        self.ts = ts
        self.older = older
        self.chars = sum(map(len, values)) + sum(map(len, values.values()))

    def modified(self, name: str) -> float:
        return self.older.get(name, self.ts) if self.older else self.ts

    def attributes(self) -> dict[str, tuple[str, float]]:
        return {name: (value, self.modified(name)) for name, value in self.values.items()}

    def update(self, updates: list[tuple[str, str]], ts: float, chars: int) -> None:
        if ts != self.ts:
            older = self.older or {}
            for name in self.values:
                older.setdefault(name, self.ts)
            self.older = older
            self.ts = ts
        if self.older:
            for name, _ in updates:
                self.older.pop(name, None)
        self.values.update(updates)
        self.chars = chars

    def size_bytes(self, updates: list[tuple[str, str]] | None = None) -> int:
        merged = dict(self.values)
        merged.update(updates or [])
        return sum(len(k.encode()) + len(v.encode()) for k, v in merged.items())

    def to_record(self) -> dict[str, Any]:
        return {"values": self.values, "ts": self.ts, "older": self.older}


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
        self._seq = itertools.count(1)
        if persistence is not None:
            self._load()

    # ---- persistence
    def _load(self) -> None:
        assert self.persistence is not None
        for client, id_column, pid, attrs in self.persistence.load_profiles():
            self.profiles[client][id_column][pid] = Profile(**attrs)
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
        names = parsed.names
        ncols = len(names) + 1
        third_party = parsed.id_column == "thirdPartyId"
        create = batch.version == "v2"
        max_id = opts.max_third_party_id_chars
        limit = opts.max_profile_bytes
        table = self.profiles[batch.client][parsed.id_column]
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
            with self.lock:
                for fields in chunk:
                    consumed += 1
                    pid = fields[0]
                    if (
                        not pid
                        or len(fields) > ncols
                        or (third_party and (len(pid) > max_id or "+" in pid or "/" in pid))
                    ):
                        failed_ids.append(pid)
                        continue
                    profile = table.get(pid)
                    if profile is None:
                        if not create:
                            not_found += 1
                            continue
                        values = {n: v for n, v in zip(names, fields[1:], strict=False) if v}
                        if not values:  # only empty values: skipped, nothing created
                            successful += 1
                            continue
                        profile = Profile(values, ts)
                        if profile.chars * 4 > limit and (
                            profile.chars > limit or profile.size_bytes() > limit
                        ):
                            failed_ids.append(pid)
                            continue
                        table[pid] = profile
                    else:
                        updates = [(n, v) for n, v in zip(names, fields[1:], strict=False) if v]
                        current = profile.values
                        chars = profile.chars
                        for n, v in updates:
                            old = current.get(n)
                            chars += len(v) - len(old) if old is not None else len(n) + len(v)
                        if chars * 4 > limit and (
                            chars > limit or profile.size_bytes(updates) > limit
                        ):
                            failed_ids.append(pid)
                            continue
                        profile.update(updates, ts, chars)
                    successful += 1
                    if persist:
                        touched.add(pid)
        if self.persistence is not None and touched:
            self.persistence.save_profiles(
                batch.client,
                parsed.id_column,
                ((pid, table[pid].to_record()) for pid in touched),
            )
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
                }
                for client in sorted(clients)
            }
