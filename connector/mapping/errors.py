"""MappingError: what every check of a mapping raises or returns, naming the file and field."""

from __future__ import annotations


class MappingError(ValueError):
    """A mapping that cannot be used; ``str()`` reads ``file: field.path: message``."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"
