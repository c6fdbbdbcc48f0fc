"""The typing rules of a param value: the one definition of what a typed value delivers.

``value_typer(spec)`` turns one non-empty source text into the text delivered for a param
of ``spec``'s type, or raises ValueError saying why it cannot. The mapping model uses it
to check a param's ``default`` when a mapping loads; ``connector.transform`` uses it for
every value its vectorised fast paths are not sure of, and those fast paths must give
exactly its output.

Nothing is guessed: ``string`` passes the text through; ``int`` and ``decimal`` accept
plain notation only (no exponent, no thousands separators); ``bool`` accepts the words in
``TRUE_WORDS`` / ``FALSE_WORDS``; ``date`` and ``datetime`` read ISO 8601 (or the param's
``input_format``), put naive values in the param's timezone (default UTC) and write ISO
8601 (or the param's ``format``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

ParamType = Literal["string", "int", "decimal", "bool", "date", "datetime"]

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
INT_RE = re.compile(r"[+-]?\d+")
DECIMAL_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class ValueSpec(Protocol):
    """What typing a value reads of a param (``connector.mapping.ParamSpec`` has it)."""

    @property
    def type(self) -> ParamType: ...
    @property
    def format(self) -> str | None: ...
    @property
    def input_format(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def decimal_places(self) -> int | None: ...


@lru_cache(maxsize=64)
def zone_of(name: str | None) -> dt.tzinfo:
    """The zone a param's ``timezone`` names; UTC when it names none."""
    return ZoneInfo(name) if name else dt.UTC


def check_decimal_text(value: str) -> Decimal:
    """Strict decimal notation (``-12.50``); no exponent, no thousands separators."""
    if not DECIMAL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a decimal number")
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the regex guards it
        raise ValueError(f"{value!r} is not a decimal number") from exc


def _parse_moment(spec: ValueSpec, text: str) -> dt.datetime | dt.date:
    if spec.input_format:
        try:
            return dt.datetime.strptime(text, spec.input_format)
        except ValueError as exc:
            raise ValueError(f"{text!r} does not match {spec.input_format!r}") from exc
    if len(text) == 10 and text[4:5] == "-":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 {spec.type}") from exc


def _as_datetime(spec: ValueSpec, text: str) -> dt.datetime:
    value = _parse_moment(spec, text)
    zone = zone_of(spec.timezone)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(zone)
    except OverflowError as exc:  # 9999-12-31T23:00:00-05:00 is in year 10000 here
        raise ValueError(f"{text!r} is out of range in {zone}") from exc


def type_value(spec: ValueSpec, text: str) -> str:
    """The delivered text of one non-empty value of ``spec``'s type; ValueError says why not."""
    return value_typer(spec)(text)


def value_typer(spec: ValueSpec) -> Callable[[str], str]:
    """A function typing one value of ``spec`` (options resolved once, not per value)."""
    kind = spec.type
    if kind == "string":
        return lambda text: text
    if kind == "int":

        def _int(text: str) -> str:
            if not INT_RE.fullmatch(text):
                raise ValueError(f"{text!r} is not an integer")
            return str(int(text))

        return _int
    if kind == "decimal":
        places = spec.decimal_places
        quantum = Decimal(1).scaleb(-places) if places is not None else None

        def _decimal(text: str) -> str:
            number = check_decimal_text(text)
            if quantum is not None:
                number = number.quantize(quantum, rounding=ROUND_HALF_UP)
            return format(number, "f")

        return _decimal
    if kind == "bool":

        def _bool(text: str) -> str:
            word = text.lower()
            if word in TRUE_WORDS:
                return "true"
            if word in FALSE_WORDS:
                return "false"
            raise ValueError(f"{text!r} is not a boolean (true/false, yes/no, 1/0)")

        return _bool
    zone = zone_of(spec.timezone)
    out_format = spec.format
    if kind == "date":

        def _date(text: str) -> str:
            value = _parse_moment(spec, text)
            if isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(zone)
                value = value.date()
            # isoformat, not strftime("%Y-..."): glibc does not zero-pad years before 1000
            return value.strftime(out_format) if out_format else value.isoformat()

        return _date

    def _datetime(text: str) -> str:
        moment = _as_datetime(spec, text)
        if out_format:
            return moment.strftime(out_format)
        return moment.isoformat(timespec="seconds" if not moment.microsecond else "auto")

    return _datetime
