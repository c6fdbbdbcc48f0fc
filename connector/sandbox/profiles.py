"""A Target visitor profile: committed attributes and, under v2's override rule, pending ones.

The v2 doc (Caveats): "Consecutive v2 batch update calls without mbox calls in between for
the same thirdPartyIds override the properties updated in the first batch update call." The
sandbox emulates the worst-case reading. A profile keeps *committed* attributes and a
*pending* set: what the latest v2 batch row for it set since its last mbox call.

- ``override(row)``: a v2 row replaces the pending set (what it does not carry is dropped);
- ``commit()``: an mbox call moves the pending set into the committed attributes;
- ``merge(updates)``: v1, and v2 with ``v2_merge``, write straight into the committed ones.

The profile as read (``read``, ``attributes``, every size check) is committed overlaid with
pending. Empty values never reach these methods: the store leaves them out of a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_NO_VALUES: dict[str, str] = {}  # never written to: see Profile.__init__


def grown(
    lookup: Callable[[str], str | None], chars: int, overlay: Iterable[tuple[str, str]]
) -> int:
    """The name + value characters of a mapping (``chars`` now) once ``overlay`` is written over it."""
    for name, value in overlay:
        old = lookup(name)
        chars += len(value) - len(old) if old is not None else len(name) + len(value)
    return chars


def third_party_id_ok(pid: str, max_chars: int) -> bool:
    """The documented thirdPartyId rules: no ``+`` or ``/``, at most ``max_chars`` characters."""
    return len(pid) <= max_chars and "+" not in pid and "/" not in pid


class Profile:
    """One visitor profile: committed attributes, pending ones, when each was set, their size.

    Compact on purpose (a full-size batch creates 500,000 of them): committed attributes
    written by the latest write share ``ts``; only older ones carry their own time in
    ``older``. Pending attributes were all set by one row, at ``pending_ts``. ``chars`` counts
    the committed names + values, ``pending_chars`` what the pending set adds to that as read
    (a cheap bound on the UTF-8 size: bytes are between 1 and 4 times the characters).
    """

    __slots__ = ("chars", "older", "pending", "pending_chars", "pending_ts", "ts", "values")

    def __init__(
        self,
        values: dict[str, str],
        ts: float,
        older: dict[str, float] | None = None,
        pending: dict[str, str] | None = None,
        pending_ts: float | None = None,
    ) -> None:
        # Profiles a v2 row creates have no committed attributes: they share one empty dict
        # (64 bytes each otherwise) until their first committed write (_write replaces it).
        self.values = values or _NO_VALUES
        self.ts = ts
        self.older = older
        self.chars = sum(map(len, values)) + sum(map(len, values.values()))
        self.pending: dict[str, str] | None = None
        self.pending_ts = ts
        self.pending_chars = 0
        if pending:
            self.override(pending, ts if pending_ts is None else pending_ts)

    @classmethod
    def created_pending(cls, row: dict[str, str], ts: float) -> Profile:
        """A profile a v2 row creates under the override rule: nothing committed, ``row`` pending.

        The same as ``Profile({}, ts, pending=row)``, minus the per-name loop (a full batch
        creates 500,000 of them).
        """
        profile = cls(_NO_VALUES, ts)
        profile.pending = row
        profile.pending_chars = sum(map(len, row)) + sum(map(len, row.values()))
        return profile

    # ---- the profile as read
    def read(self) -> dict[str, str]:
        """The attributes as read: committed overlaid with pending (do not mutate)."""
        return {**self.values, **self.pending} if self.pending else self.values

    def value(self, name: str) -> str | None:
        if self.pending is not None and name in self.pending:
            return self.pending[name]
        return self.values.get(name)

    def modified(self, name: str) -> float:
        if self.pending is not None and name in self.pending:
            return self.pending_ts
        return self.older.get(name, self.ts) if self.older else self.ts

    def modified_at(self) -> float:
        """When the profile last changed (as read)."""
        return max(self.ts, self.pending_ts) if self.pending else self.ts

    def attributes(self) -> dict[str, tuple[str, float]]:
        return {name: (value, self.modified(name)) for name, value in self.read().items()}

    def size_chars(self) -> int:
        return self.chars + self.pending_chars

    def size_bytes(self, row: dict[str, str] | None = None, *, override: bool = False) -> int:
        """UTF-8 bytes of names + values as read, after ``merge(row)`` or ``override(row)``."""
        view = dict(self.values) if override else dict(self.read())
        view.update(row or {})
        return sum(len(k.encode()) + len(v.encode()) for k, v in view.items())

    def fits(
        self, limit: int, chars: int, row: dict[str, str] | None = None, *, override: bool = False
    ) -> bool:
        """Whether the profile as read is at most ``limit`` UTF-8 bytes after ``row`` is merged
        (or, with ``override``, made the pending set); ``chars`` is its size in characters then.
        """
        if chars * 4 <= limit:  # the usual case, without encoding anything
            return True
        return chars <= limit and self.size_bytes(row, override=override) <= limit

    def chars_if_merged(self, updates: dict[str, str]) -> int:
        return grown(self.value, self.size_chars(), updates.items())

    def chars_if_overridden(self, row: dict[str, str]) -> int:
        return self.chars + grown(self.values.get, 0, row.items())

    # ---- changes
    def merge(self, updates: dict[str, str], ts: float) -> None:
        """Write ``updates`` into the committed attributes, set at ``ts``.

        A pending value of the same name is superseded (the later write wins as read), which
        is not counted as dropped by the override rule.
        """
        self._write(updates, ts)
        pending = self.pending
        if pending:
            for name in updates:
                pending.pop(name, None)
            if not pending:
                self.pending = None
            self.pending_chars = grown(self.values.get, 0, pending.items())

    def override(self, row: dict[str, str], ts: float) -> int:
        """Make ``row`` the whole pending set, set at ``ts``; returns how many values it dropped.

        Dropped: pending values of names ``row`` does not carry. An empty ``row`` drops them all.
        """
        old = self.pending
        dropped = sum(1 for name in old if name not in row) if old else 0
        self.pending = row or None
        self.pending_ts = ts
        self.pending_chars = grown(self.values.get, 0, row.items())
        return dropped

    def commit(self) -> int:
        """Move the pending attributes into the committed ones (an mbox call); returns how many."""
        pending = self.pending
        if not pending:
            return 0
        self._write(pending, self.pending_ts)
        self.pending = None
        self.pending_chars = 0
        return len(pending)

    def _write(self, updates: dict[str, str], ts: float) -> None:
        self.chars = grown(self.values.get, self.chars, updates.items())
        if ts > self.ts:
            older = self.older or {}
            for name in self.values:
                older.setdefault(name, self.ts)
            self.older = older
            self.ts = ts
        if ts == self.ts:
            if self.older:
                for name in updates:
                    self.older.pop(name, None)
        else:  # a commit of values pending since before the latest committed write
            older = self.older or {}
            older.update(dict.fromkeys(updates, ts))
            self.older = older
        if self.values is _NO_VALUES:
            self.values = {}
        self.values.update(updates)

    # ---- persistence
    def to_record(self) -> dict[str, Any]:
        """The committed part, as ``Profile(**record)`` takes it."""
        return {"values": self.values, "ts": self.ts, "older": self.older}

    def pending_record(self) -> tuple[dict[str, str] | None, float | None]:
        """The pending part: (attributes or None, when they were set or None)."""
        return (self.pending, self.pending_ts) if self.pending else (None, None)
