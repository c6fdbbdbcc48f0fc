"""A mapping's params held against a Copernica database's fields, as Copernica compares names.

Copernica matches field names case-insensitively and drops, without an error, every name the
database has no field for. So a param ``firstname`` lands in the field ``FirstName``, and a
param ``nickname`` sent to a database without such a field is lost. ``FieldCheck`` says so
once per param and destination (a note: the rows are still delivered), and maps the
database's spelling back to the param's for read-back. A match field the database lacks is
worse: Copernica ignores a condition on an unknown field, so the ``fields[]`` selector would
select, and the PUT overwrite, every profile of the database; that is a configuration error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connector.destinations.http import ConfigurationError


class FieldCheck:
    """The fields of one database, and which params have been reported against them."""

    def __init__(self, database: str, fields: Iterable[str]) -> None:
        self.database = database
        self._by_lower = {name.lower(): name for name in fields}
        self._param_of: dict[str, str] = {}  # lower-cased field name -> param name
        self._seen: set[str] = set()

    def field_for(self, param: str) -> str | None:
        """The database's field a param lands in (any casing), or None: dropped."""
        return self._by_lower.get(param.lower())

    def require_match_field(self, match_field: str) -> None:
        """``ConfigurationError`` unless the database has the match field (any casing)."""
        if self.field_for(match_field) is None:
            raise ConfigurationError(
                f"copernica database {self.database!r} has no field {match_field!r} (the "
                "identity's match field): Copernica ignores a condition on an unknown field, "
                "so every PUT would update every profile of the database"
            )

    def notes(self, params: Iterable[str]) -> list[str]:
        """What to warn of for params not seen before: each one whose name the database
        spells otherwise (with its spelling), and those it has no field for."""
        notes: list[str] = []
        unknown: list[str] = []
        for param in params:
            if param in self._seen:
                continue
            self._seen.add(param)
            found = self.field_for(param)
            if found is None:
                unknown.append(param)
                continue
            self._param_of.setdefault(found.lower(), param)
            if found != param:
                notes.append(
                    f"param {param!r} is field {found!r} in database {self.database} "
                    "(Copernica matches field names case-insensitively)"
                )
        if unknown:
            notes.append(
                f"fields unknown to database {self.database} (silently dropped by the API): "
                f"{', '.join(sorted(unknown))}"
            )
        return notes

    def as_params(self, stored: Mapping[str, str]) -> dict[str, str]:
        """A read-back profile's fields under the names of the params that wrote them."""
        return {self._param_of.get(name.lower(), name): value for name, value in stored.items()}
