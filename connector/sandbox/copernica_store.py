"""Copernica state: databases (by id or name), profiles, and the ``fields[]`` selector."""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.sandbox.options import SandboxOptions
from connector.sandbox.persistence import Persistence
from connector.sandbox.target_store import iso

SPECIAL_FIELDS = ("id", "code", "modified")
_SELECTOR = re.compile(r"^\s*([^=!<>~]+?)\s*(==|!=|<>|<=|>=|=~|!~|<|>)(.*)$", re.DOTALL)


class CopernicaError(Exception):
    """Refused request; ``str(exc)`` is the message of the 400 body."""


@dataclass
class Database:
    id: int
    name: str
    fields: list[str] | None  # None: any field is accepted

    def keep_known(self, values: dict[str, str]) -> dict[str, str]:
        """Unknown field names are silently ignored, as the live API does."""
        if self.fields is None:
            return dict(values)
        return {k: v for k, v in values.items() if k in self.fields}


@dataclass
class CopernicaProfile:
    id: int
    database_id: int
    fields: dict[str, str]
    secret: str
    created: float
    modified: float

    def value(self, name: str) -> str:
        if name == "id":
            return str(self.id)
        if name == "code":
            return self.secret
        if name == "modified":
            return iso(self.modified)
        return self.fields.get(name, "")

    def as_json(self) -> dict[str, Any]:
        return {
            "ID": str(self.id),
            "fields": dict(self.fields),
            "interests": {},
            "database": str(self.database_id),
            "secret": self.secret,
            "created": iso(self.created),
            "modified": iso(self.modified),
            "removed": False,
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "secret": self.secret,
            "created": self.created,
            "modified": self.modified,
        }


def _like(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None


@dataclass
class Condition:
    """One ``fields[]`` entry: ``<field><operator><value>``."""

    name: str
    op: str
    value: str
    _like: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = _SELECTOR.match(text)
        if not match:
            raise CopernicaError(
                f"Invalid fields parameter {text!r}: expected <field><operator><value> "
                "with one of == != <> < > <= >= =~ !~"
            )
        name, op, value = match.groups()
        cond = cls(name, "!=" if op == "<>" else op, value)
        if cond.op in ("=~", "!~"):
            cond._like = _like(value)
        return cond

    def matches(self, profile: CopernicaProfile) -> bool:
        actual = profile.value(self.name)
        op = self.op
        if op == "==":
            return actual == self.value
        if op == "!=":
            return actual != self.value
        if self._like is not None:
            hit = self._like.fullmatch(actual) is not None
            return hit if op == "=~" else not hit
        left, right = _number(actual), _number(self.value)
        pair: tuple[Any, Any] = (
            (left, right)
            if left is not None and right is not None
            else (
                actual,
                self.value,
            )
        )
        return {
            "<": pair[0] < pair[1],
            ">": pair[0] > pair[1],
            "<=": pair[0] <= pair[1],
            ">=": pair[0] >= pair[1],
        }[op]


class CopernicaStore:
    """Databases and profiles; thread-safe."""

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
        self.databases: dict[int, Database] = {}
        self.by_name: dict[str, Database] = {}
        self.profiles: dict[int, CopernicaProfile] = {}
        # (database id, field, value) -> ids of the profiles holding it: a PUT selects its
        # profile by field==value, which a scan of every profile made quadratic in profiles
        self._index: dict[tuple[int, str, str], set[int]] = {}
        self.calls: dict[str, int] = {}
        if persistence is not None:
            for db_id, name, fields in persistence.load_databases():
                self._add_db(Database(db_id, name, fields))
            for pid, db_id, data in persistence.load_copernica_profiles():
                self.profiles[pid] = CopernicaProfile(pid, db_id, **data)
                self._index_fields(self.profiles[pid], self.profiles[pid].fields)
        for name, fields in options.copernica_databases.items():
            db = self.by_name.get(name)
            if db is None:
                self._create_db(name, fields)
            elif db.fields != fields:
                db.fields = None if fields is None else list(fields)
                self._save_db(db)
        self._next_profile = itertools.count(max(self.profiles, default=0) + 1)

    def _add_db(self, db: Database) -> None:
        self.databases[db.id] = db
        self.by_name[db.name] = db

    def _save_db(self, db: Database) -> None:
        if self.persistence is not None:
            self.persistence.save_database(db.id, db.name, db.fields)

    def _create_db(self, name: str, fields: list[str] | None) -> Database:
        db_id = max(self.databases, default=0) + 1
        db = Database(db_id, name, None if fields is None else list(fields))
        self._add_db(db)
        self._save_db(db)
        return db

    def _save(self, profiles: Iterable[CopernicaProfile]) -> None:
        if self.persistence is not None:
            self.persistence.save_copernica_profiles(
                (p.id, p.database_id, p.to_record()) for p in profiles
            )

    def count_call(self, key: str) -> None:
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1

    def database(self, ref: str) -> Database:
        """By numeric id, else by name (created on first use when autocreate is on)."""
        with self.lock:
            if ref.isdigit():
                db = self.databases.get(int(ref))
                if db is None:
                    raise CopernicaError("No database with supplied ID")
                return db
            db = self.by_name.get(ref)
            if db is None:
                if not self.options.copernica_autocreate:
                    raise CopernicaError("No database with supplied ID")
                db = self._create_db(ref, None)
            return db

    def _index_fields(self, profile: CopernicaProfile, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            self._index.setdefault((profile.database_id, name, value), set()).add(profile.id)

    def _unindex_fields(self, profile: CopernicaProfile, names: Iterable[str]) -> None:
        for name in names:
            if name in profile.fields:
                key = (profile.database_id, name, profile.fields[name])
                ids = self._index.get(key)
                if ids is not None:
                    ids.discard(profile.id)
                    if not ids:
                        del self._index[key]

    def _candidates(self, db: Database, conditions: list[Condition]) -> Iterable[CopernicaProfile]:
        """The profiles a selector can match: by the index when it has a field==value."""
        for cond in conditions:
            if cond.op == "==" and cond.value and cond.name not in ("id", "code", "modified"):
                ids = self._index.get((db.id, cond.name, cond.value), set())
                return [self.profiles[i] for i in sorted(ids)]
        return self.profiles.values()

    def select(self, db: Database, conditions: list[Condition]) -> list[CopernicaProfile]:
        with self.lock:
            return [
                p
                for p in self._candidates(db, conditions)
                if p.database_id == db.id and all(c.matches(p) for c in conditions)
            ]

    def create(self, db: Database, values: dict[str, str]) -> CopernicaProfile:
        now = self.clock()
        with self.lock:
            pid = next(self._next_profile)
            profile = CopernicaProfile(
                pid, db.id, db.keep_known(values), secrets.token_hex(8), now, now
            )
            self.profiles[pid] = profile
            self._index_fields(profile, profile.fields)
        self._save([profile])
        return profile

    def update(
        self, profiles: list[CopernicaProfile], db: Database, values: dict[str, str]
    ) -> None:
        now = self.clock()
        known = db.keep_known(values)
        with self.lock:
            for profile in profiles:
                self._unindex_fields(profile, known)
                profile.fields.update(known)
                self._index_fields(profile, known)
                profile.modified = now
        self._save(profiles)

    def profile(self, pid: int) -> CopernicaProfile | None:
        return self.profiles.get(pid)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counts: dict[int, int] = {}
            for p in self.profiles.values():
                counts[p.database_id] = counts.get(p.database_id, 0) + 1
            return {
                "databases": [
                    {
                        "id": db.id,
                        "name": db.name,
                        "fields": db.fields,
                        "profiles": counts.get(db.id, 0),
                    }
                    for db in self.databases.values()
                ],
                "calls": dict(self.calls),
            }
