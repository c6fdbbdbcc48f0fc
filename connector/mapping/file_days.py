"""The day a CSV export belongs to, read from its file name by the source's ``date_pattern``.

A pattern is a regex with a named group ``date`` (eight digits, dashes allowed) or groups
``Y``, ``m`` and ``d``; a strftime-like pattern such as ``pos_%Y%m%d`` (only ``%Y``,
``%m``, ``%d`` and ``%%``) is translated to such a regex.
"""

from __future__ import annotations

import datetime as dt
import re

DEFAULT_DATE_PATTERN = r"(?P<date>\d{4}-?\d{2}-?\d{2})"


def compile_date_pattern(pattern: str) -> re.Pattern[str]:
    """The regex locating a day in a file name (a strftime-like pattern is translated)."""
    if "%" in pattern and "(?P<" not in pattern:
        parts = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{2})", "%d": r"(?P<d>\d{2})"}
        out, i = [], 0
        while i < len(pattern):
            token = pattern[i : i + 2]
            if token in parts:
                out.append(parts[token])
                i += 2
            elif token == "%%":  # noqa: S105 - a strftime escape, not a secret
                out.append("%")
                i += 2
            elif pattern[i] == "%":
                raise ValueError(f"date_pattern: only %Y, %m and %d are supported, not {token!r}")
            else:
                out.append(re.escape(pattern[i]))
                i += 1
        pattern = "".join(out)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"date_pattern is not a valid regex: {exc}") from exc
    groups = set(regex.groupindex)
    if "date" not in groups and not {"Y", "m", "d"} <= groups:
        raise ValueError("date_pattern needs a named group `date` (or groups `Y`, `m`, `d`)")
    return regex


def day_from_name(regex: re.Pattern[str], name: str) -> dt.date | None:
    """The day a file name carries, or None when the pattern does not find a valid day."""
    match = regex.search(name)
    if match is None:
        return None
    groups = match.groupdict()
    if groups.get("date"):
        digits = re.sub(r"\D", "", groups["date"])
        if len(digits) != 8:
            return None
        year, month, day = digits[:4], digits[4:6], digits[6:]
    else:
        year, month, day = groups["Y"], groups["m"], groups["d"]
    try:
        return dt.date(int(year), int(month), int(day))
    except (TypeError, ValueError):
        return None
