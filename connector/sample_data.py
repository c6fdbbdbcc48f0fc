"""The sample CRM database: ``sample_exports/crm.db``, built from ``crm.sql`` beside it.

Both are in the repository, so the shipped mappings work right after a clone (`connector
preview crm_copernica`, `connector mappings validate`, `dagster dev`): ``crm.sql`` is the
readable source, ``crm.db`` (53 KB) what it builds, byte for byte the same on every build with
one SQLite version; a test holds that they hold the same rows. ``ensure_sample_db`` builds the
database again when it is missing (deleted, or a copy of the SQL alone).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_DB = Path("sample_exports") / "crm.db"


def ensure_sample_db(path: str | Path = DEFAULT_DB, *, sql: str | Path | None = None) -> Path:
    """Build the sample SQLite database at ``path`` from ``crm.sql`` beside it, if it is missing."""
    path = Path(path)
    if path.is_file():
        return path
    script = Path(sql) if sql is not None else path.with_name("crm.sql")
    if not script.is_file():
        raise FileNotFoundError(f"{script}: the SQL the sample database is built from is missing")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".building")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as conn:
        conn.executescript(script.read_text(encoding="utf-8"))
    conn.close()
    partial.replace(path)  # atomic: a parallel test never sees a half-built database
    log.info("built %s from %s", path, script)
    return path
