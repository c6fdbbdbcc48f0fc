"""What every check of a mapping raises or returns, naming the file, line and field.

- ``MappingError``: one problem, ``file:line: field.path: message; hint``.
- ``MappingsInvalid``: mappings that cannot be used (every problem, one per line); raised
  where mappings are loaded to run (Dagster definitions, ``connector sync``, ``preview``).
"""

from __future__ import annotations

from collections.abc import Sequence


class MappingError(ValueError):
    """A mapping that cannot be used; ``str()`` reads ``file:line: field.path: message; hint``.

    ``line`` (1-based) is the line of the offending key in the file, or of the nearest key
    above it that is there (a required key that is missing); None when the problem has no
    place in the file. ``field`` is empty when the problem is not about one field. ``hint``
    is a suggestion (the closest known key, where a mis-indented key belongs), or None.
    """

    def __init__(
        self,
        source: str,
        field: str,
        message: str,
        *,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.field = field
        self.message = message
        self.line = line
        self.hint = hint
        super().__init__(str(self))

    def at_line(self, line: int | None) -> MappingError:
        """The same error placed at ``line``."""
        return MappingError(self.source, self.field, self.message, line=line, hint=self.hint)

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        return f"{where}: {text}" if where else text


class MappingsInvalid(Exception):
    """Mappings that cannot be used; ``str()`` lists every error, one per line.

    Not a ValueError: callers that turn ValueErrors into usage errors let it through, to be
    reported as bad configuration."""

    def __init__(self, errors: Sequence[MappingError]) -> None:
        self.errors = list(errors)
        super().__init__("invalid source mappings:\n" + "\n".join(f"  {e}" for e in errors))
