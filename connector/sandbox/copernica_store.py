"""Copernica state: databases (typed fields, by id or name), their profiles, and selection.

Field names are matched case-insensitively and stored under the database's casing; values
are converted for the field's type (``copernica_schema.convert``); names a database does not
have are dropped, as the live API drops them silently. An *open* database (declared by name
only, or made on first use) adds a text field the first time a name is written instead.
A removed profile keeps its id, reads with every field empty and is never listed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from connector.sandbox.copernica_conditions import BoundCondition
from connector.sandbox.copernica_schema import Schema, convert, parse_database, parse_schema
from connector.sandbox.options import SandboxOptions
from connector.sandbox.persistence import Persistence

TIMEZONE = ZoneInfo("Europe/Amsterdam")  # the zone of created/modified at live Copernica


def stamp(ts: float) -> str:
    """A moment as the live API writes it: ``Y-m-d H:i:s`` in Europe/Amsterdam."""
    return dt.datetime.fromtimestamp(ts, TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")


class CopernicaError(Exception):
    """Refused request; ``str(exc)`` is the message of the 400 body, word for word."""


@dataclass
class Database:
    id: int
    name: str
    schema: Schema

    def as_json(self) -> dict[str, Any]:
        """The database as ``GET database/{id}`` and ``GET databases`` give it."""
        fields = [f.as_json() for f in self.schema.fields]
        collections = [
            {
                "ID": str(1000 * self.id + n + 1),
                "name": name,
                "database": str(self.id),
                "fields": listing([f.as_json() for f in specs]),
            }
            for n, (name, specs) in enumerate(self.schema.collections.items())
        ]
        return {
            "ID": str(self.id),
            "name": self.name,
            "description": "",
            "archived": False,
            "fields": listing(fields),
            "interests": listing([]),
            "collections": listing(collections),
        }


def listing(items: list[Any], start: int = 0, limit: int = 100) -> dict[str, Any]:
    """A paged listing of ``items`` in the live API's shape."""
    page = items[start : start + limit] if start >= 0 and limit >= 0 else []
    return {"start": start, "limit": limit, "count": len(page), "data": page, "total": len(items)}


@dataclass
class CopernicaProfile:
    id: int
    database_id: int
    fields: dict[str, str]  # by the field's declared name; a missing field reads as its default
    secret: str
    created: float
    modified: float
    removed: float | None = None

    def value(self, key: str, schema: Schema) -> str:
        """The value of field ``key`` (declared name) or of a special field."""
        if key == "id":
            return str(self.id)
        if key == "code":
            return self.secret
        if key == "modified":
            return stamp(self.modified)
        if key in self.fields:
            return self.fields[key]
        spec = schema.lookup(key)
        return "" if spec is None else spec.default()

    def field_values(self, schema: Schema) -> dict[str, str]:
        """Every field of the database, in declared order (all empty once removed)."""
        if self.removed is not None:
            return {f.name: "" for f in schema.fields}
        return {f.name: self.fields.get(f.name, f.default()) for f in schema.fields}

    def as_json(self, schema: Schema) -> dict[str, Any]:
        return {
            "ID": str(self.id),
            "fields": self.field_values(schema),
            "interests": {},
            "database": str(self.database_id),
            "secret": self.secret,
            "created": stamp(self.created),
            "modified": stamp(self.modified),
            "removed": False if self.removed is None else stamp(self.removed),
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "secret": self.secret,
            "created": self.created,
            "modified": self.modified,
            "removed": self.removed,
        }


def new_secret() -> str:
    return secrets.token_hex(14)  # 28 hex characters, like the live API's


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
        self.profiles: dict[int, CopernicaProfile] = {}
        # (database id, field, lower-cased value) -> ids of the profiles holding it: a PUT
        # selects its profile by field==value, which a scan of every profile made quadratic
        self._index: dict[tuple[int, str, str], set[int]] = {}
        self.calls: dict[str, int] = {}
        if persistence is not None:
            for db_id, name, declared in persistence.load_databases():
                self._add_db(Database(db_id, name, _load_schema(name, declared)))
            for pid, db_id, data in persistence.load_copernica_profiles():
                self.profiles[pid] = CopernicaProfile(pid, db_id, **data)
                self._index_fields(self.profiles[pid], self.profiles[pid].fields)
        self.declare_from_options()
        self._next_profile = itertools.count(max(self.profiles, default=0) + 1)

    # -- databases ------------------------------------------------------------------------

    def declare_from_options(self) -> None:
        """The databases of ``copernica_databases`` (names) and ``copernica_schema`` (typed)."""
        declared = {
            name: parse_database(name, fields)
            for name, fields in self.options.copernica_databases.items()
        }
        declared.update(parse_schema(self.options.copernica_schema))
        self.declare(declared)

    def declare(self, schemas: Mapping[str, Schema]) -> None:
        """Create each database, or give an existing one (same name, any casing) this schema."""
        with self.lock:
            for name, schema in schemas.items():
                db = self._by_name(name)
                if db is None:
                    db = Database(max(self.databases, default=0) + 1, name, schema)
                    self._add_db(db)
                else:
                    db.schema = schema
                self._save_db(db)

    @property
    def by_name(self) -> dict[str, Database]:
        """The databases by their declared name (for white-box reads)."""
        with self.lock:
            return {db.name: db for db in self.databases.values()}

    def _by_name(self, name: str) -> Database | None:
        wanted = name.lower()
        return next((db for db in self.databases.values() if db.name.lower() == wanted), None)

    def _add_db(self, db: Database) -> None:
        self.databases[db.id] = db

    def _save_db(self, db: Database) -> None:
        if self.persistence is not None:
            declared = {**db.schema.as_declared(), "open": db.schema.open}
            self.persistence.save_database(db.id, db.name, declared)

    def database(self, ref: str, *, autocreate: bool = False) -> Database:
        """By numeric id, else by name (any casing); a name is made into an open database when
        ``autocreate`` and the sandbox allows it. Else "No database with supplied ID"."""
        with self.lock:
            if ref.isdigit():
                db = self.databases.get(int(ref))
            else:
                db = self._by_name(ref)
                if db is None and autocreate and self.options.copernica_autocreate and ref:
                    self.declare({ref: Schema(open=True)})
                    db = self._by_name(ref)
            if db is None:
                raise CopernicaError("No database with supplied ID")
            return db

    def add_field(self, db: Database, name: str, type_: str, value: str) -> None:
        """A new field (``POST database/{id}/fields``); profiles read it as its default."""
        with self.lock:
            db.schema.add_field(name, type_, value)
            self._save_db(db)

    def count_call(self, key: str) -> None:
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1

    def reset(self) -> None:
        """Forget every database and profile, then declare the configured databases again."""
        with self.lock:
            self.databases.clear()
            self.profiles.clear()
            self._index.clear()
            self.calls.clear()
            if self.persistence is not None:
                self.persistence.clear_copernica()
            self.declare_from_options()
            self._next_profile = itertools.count(1)

    # -- profiles -------------------------------------------------------------------------

    def _resolve(self, db: Database, values: Iterable[tuple[str, object]]) -> dict[str, str]:
        """Body values by the database's field names, converted; unknown names dropped."""
        out: dict[str, str] = {}
        for name, value in values:
            spec = db.schema.lookup(name)
            if spec is None and db.schema.open and name:
                spec = db.schema.add_field(name)
                self._save_db(db)
            if spec is not None:
                out[spec.name] = convert(value, spec)  # a later duplicate (any casing) wins
        return out

    def _index_fields(self, profile: CopernicaProfile, fields: Mapping[str, str]) -> None:
        for name, value in fields.items():
            key = (profile.database_id, name, value.lower())
            self._index.setdefault(key, set()).add(profile.id)

    def _unindex_fields(self, profile: CopernicaProfile, names: Iterable[str]) -> None:
        for name in names:
            if name in profile.fields:
                key = (profile.database_id, name, profile.fields[name].lower())
                ids = self._index.get(key)
                if ids is not None:
                    ids.discard(profile.id)
                    if not ids:
                        del self._index[key]

    def _candidates(
        self, db: Database, conditions: list[BoundCondition]
    ) -> Iterable[CopernicaProfile]:
        """The profiles a selector can match: by the index when it has a text==value."""
        for cond in conditions:
            wanted = cond.index_value
            if wanted and cond.spec is not None and wanted != cond.spec.default().lower():
                ids = self._index.get((db.id, cond.key, wanted), set())
                return [self.profiles[i] for i in sorted(ids)]
        return self.profiles.values()

    def select(self, db: Database, conditions: list[BoundCondition]) -> list[CopernicaProfile]:
        """The database's profiles (not removed) matching every condition, by id."""
        with self.lock:
            return [
                p
                for p in self._candidates(db, conditions)
                if p.database_id == db.id
                and p.removed is None
                and all(c.matches(p.value(c.key, db.schema)) for c in conditions)
            ]

    def create(self, db: Database, values: Iterable[tuple[str, object]]) -> CopernicaProfile:
        now = self.clock()
        with self.lock:
            fields = self._resolve(db, values)
            pid = next(self._next_profile)
            profile = CopernicaProfile(pid, db.id, fields, new_secret(), now, now)
            self.profiles[pid] = profile
            self._index_fields(profile, fields)
        self._save([profile])
        return profile

    def update(
        self, profiles: list[CopernicaProfile], db: Database, values: Iterable[tuple[str, object]]
    ) -> None:
        """Write ``values`` into each profile; ``modified`` moves only for a profile whose
        values change (or, as live, for a removed one given any known field)."""
        now = self.clock()
        with self.lock:
            known = self._resolve(db, values)
            changed = []
            for profile in profiles:
                if profile.removed is not None:
                    if known:
                        profile.modified = now
                        changed.append(profile)
                    continue
                current = {k: profile.value(k, db.schema) for k in known}
                if current == known:
                    continue
                self._unindex_fields(profile, known)
                profile.fields.update(known)
                self._index_fields(profile, known)
                profile.modified = now
                changed.append(profile)
        self._save(changed)

    def set_secret(self, profile: CopernicaProfile, secret: str) -> None:
        with self.lock:
            profile.secret = secret
        self._save([profile])

    def remove(self, profile: CopernicaProfile) -> None:
        """Mark removed: "This profile has already been removed" when it already is."""
        with self.lock:
            if profile.removed is not None:
                raise CopernicaError("This profile has already been removed")
            self._unindex_fields(profile, list(profile.fields))
            profile.fields = {}
            profile.removed = self.clock()
        self._save([profile])

    def profile(self, pid: int) -> CopernicaProfile | None:
        return self.profiles.get(pid)

    def _save(self, profiles: Iterable[CopernicaProfile]) -> None:
        if self.persistence is not None:
            self.persistence.save_copernica_profiles(
                (p.id, p.database_id, p.to_record()) for p in profiles
            )

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            counts: dict[int, int] = {}
            for p in self.profiles.values():
                if p.removed is None:
                    counts[p.database_id] = counts.get(p.database_id, 0) + 1
            return {
                "databases": [
                    {
                        "id": db.id,
                        "name": db.name,
                        "fields": [f.name for f in db.schema.fields],
                        "types": {f.name: f.type for f in db.schema.fields},
                        "open": db.schema.open,
                        "profiles": counts.get(db.id, 0),
                    }
                    for db in self.databases.values()
                ],
                "calls": dict(self.calls),
            }


def _load_schema(name: str, declared: object) -> Schema:
    """A persisted declaration: today's ``{"fields", "collections", "open"}`` or an older
    file's list of field names (None: open)."""
    if isinstance(declared, dict):
        schema = parse_database(name, {k: declared.get(k) for k in ("fields", "collections")})
        schema.open = bool(declared.get("open"))
        return schema
    return parse_database(name, declared)
