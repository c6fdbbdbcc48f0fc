"""The peer benchmark's source table (issue 21) and the read-back that checks a delivery.

One SQLite table ``customers`` of hostile text values, made from a seed: the same rows for
drt and for the connector, so that what the sandbox holds afterwards can be compared value
for value with the source. ``rows`` of a given seed are a prefix of any larger table's.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TABLE = "customers"
ID = "customer_id"
# the params both sides deliver, named as the destination names them (source column = name)
PARAMS = ("email", "firstname", "lastname", "city", "notes")
COLUMNS = (ID, *PARAMS, "updated_at")
DAY = "2026-11-30"  # every row's cursor falls in this day: one partition

# The hostile fragments: every character the Target batch format or a naive CSV/JSON writer
# gets wrong (Target: a raw `&` cuts the batch, `%` rejects it, `+` becomes a space, `,` and
# newlines split fields and rows, whitespace around a field is trimmed).
FRAGMENTS = (
    "Zoë",
    "Ærøskøbing",
    "日本語テキスト",
    "emoji 🎉🚀",
    "O'Brien",
    'say "hi"',
    "a,b,c",
    "line one\nline two",
    "crlf\r\nend",
    "Tom & Jerry",
    "a=b&c=d",
    "1+1=2",
    "100% sure",
    "%41 is not A",
    "%",
    "#hashtag",
    "  leading",
    "trailing  ",
    "\ttabbed\t",
    "semi;colon",
    "back\\slash",
    "batch=",
    "São Paulo, SP",
)
LONG_EVERY = 1_000  # one row in LONG_EVERY has a very long note
LONG_CHARS = 3_000
NULL_SHARE = 0.05  # share of NULLs in each nullable column (email is never NULL)
FORMAT = 3  # in the files' names: a change of the rows above makes new files


def _value(rnd: random.Random, column: str, i: int) -> str | None:
    """One hostile fragment per value (400,000 rows stay near 55 MB as a Target batch)."""
    if column != "email" and rnd.random() < NULL_SHARE:
        return None
    fragment = rnd.choice(FRAGMENTS)
    if column == "email":
        return f"{fragment}p{i}@example.com"
    if column == "notes" and i % LONG_EVERY == 0:
        unit = fragment + " "
        return (unit * (LONG_CHARS // len(unit) + 1))[:LONG_CHARS]
    # the number on either side, so that leading and trailing whitespace stays at an end
    return f"{i}{fragment}" if i % 2 else f"{fragment}{i}"


def make_rows(rows: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """The table's rows: ids ``C0000000001`` ..., a cursor inside ``DAY``."""
    rnd = random.Random(seed)
    for i in range(rows):
        values = [_value(rnd, c, i) for c in PARAMS]
        stamp = f"{DAY} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        yield (f"C{i:010d}", *values, stamp)


def dataset(folder: Path, rows: int, seed: int) -> Path:
    """The SQLite file of ``rows`` rows (made once per size and seed, then reused)."""
    path = folder / f"peer-v{FORMAT}-{rows}-s{seed}.db"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    cols = ", ".join(f"{c} TEXT" + (" PRIMARY KEY" if c == ID else "") for c in COLUMNS)
    con.execute(f"CREATE TABLE {TABLE} ({cols})")
    con.executemany(
        f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(COLUMNS))})", make_rows(rows, seed)
    )
    con.commit()
    con.close()
    tmp.rename(path)
    return path


def source_values(path: Path) -> dict[str, dict[str, str | None]]:
    """Every row of the table: id -> {param: value or None}."""
    con = sqlite3.connect(path)
    try:
        cur = con.execute(f"SELECT {ID}, {', '.join(PARAMS)} FROM {TABLE}")
        return {row[0]: dict(zip(PARAMS, row[1:], strict=True)) for row in cur}
    finally:
        con.close()


# -- read-back --------------------------------------------------------------------------------


def target_profiles(sandbox_db: Path, client: str = "demo") -> dict[str, dict[str, str]]:
    """The sandbox's Target profiles (its ``--data`` file): id -> the attributes a profile
    fetch reads (committed values overlaid with pending ones)."""
    con = sqlite3.connect(sandbox_db)
    try:
        rows = con.execute(
            "SELECT id, attrs, pending FROM target_profiles WHERE client = ?", (client,)
        ).fetchall()
    finally:
        con.close()
    out = {}
    for pid, attrs, pending in rows:
        values = dict(json.loads(attrs).get("values") or {})
        values.update(json.loads(pending) if pending else {})
        out[pid] = values
    return out


def copernica_profiles(base_url: str, database: str, match: str = ID) -> dict[str, Any]:
    """The sandbox's Copernica profiles, read through its listing API (pages of 1,000):
    the match field's value -> list of the profiles' fields (a list: duplicates show)."""
    import httpx

    out: dict[str, Any] = {}
    start = 0
    with httpx.Client(base_url=base_url, timeout=60) as client:
        while True:
            page = client.get(
                f"/database/{database}/profiles", params={"start": start, "limit": 1000}
            )
            page.raise_for_status()
            doc = page.json()
            for item in doc["data"]:
                fields = item.get("fields") or {}
                out.setdefault(str(fields.get(match, "")), []).append(fields)
            start += doc["count"]
            if not doc["count"]:
                return out


def _same(expected: str | None, got: Any) -> bool:
    """A NULL is delivered as nothing: no attribute, or an empty one."""
    if expected is None or expected == "":
        return got is None or got == ""
    return got == expected


def compare(source: dict[str, dict[str, str | None]], delivered: dict[str, Any]) -> dict[str, Any]:
    """What the destination holds against the source: every row delivered with every value
    exact, or counts and a few examples of what went wrong. ``delivered``: id -> fields,
    or id -> a list of fields (Copernica: more than one profile per id is a duplicate)."""
    missing = wrong = duplicated = 0
    examples: list[str] = []
    for pid, expected in source.items():
        got = delivered.get(pid)
        if isinstance(got, list):
            duplicated += len(got) > 1
            got = got[0] if got else None
        if got is None:
            if all(v is None for v in expected.values()):
                continue  # nothing to deliver
            missing += 1
            if len(examples) < 3:
                examples.append(f"{pid}: missing")
            continue
        bad = [p for p in PARAMS if not _same(expected[p], got.get(p))]
        if bad:
            wrong += 1
            if len(examples) < 3:
                p = bad[0]
                examples.append(f"{pid}.{p}: sent {expected[p]!r:.60} got {got.get(p)!r:.60}")
    extra = len(set(delivered) - set(source))
    return {
        "rows": len(source),
        "missing": missing,
        "wrong_values": wrong,
        "duplicated": duplicated,
        "extra": extra,
        "ok": not (missing or wrong or duplicated or extra),
        "examples": examples,
    }
