"""drt's side of the peer benchmark: its throwaway venv and its project files.

drt-core is installed by the bench into a venv of its own (the product does not depend on
it). Its projects are written the way a data engineer would write them for this job:

- **Copernica**: drt's ``rest_api`` destination, one ``POST database/{db}/profiles`` per row
  (its URL cannot carry the row, so it cannot ``PUT`` with a selector: it can only create).
- **Target v2**: ``rest_api`` in ``body_mode: batch``: one POST of a batch file rendered by a
  Jinja ``batch_template``. Target reads the body as form-encoded text, so every value is
  percent-encoded by hand in the model's SQL (``encoded_sql``): without it a raw ``&`` cuts
  the batch, ``%`` rejects it, ``+`` turns into a space and ``,`` or a newline moves fields.
  drt cannot read Target's XML answer, so it counts a rejected batch as synced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.peer_data import ID, PARAMS, TABLE

DRT_VERSION = "1.2.1"

# Target's form decoding: what must be escaped, "%" first (it starts every escape)
_ESCAPES = (
    ("%", "%25"),
    ("&", "%26"),
    ("+", "%2B"),
    (",", "%2C"),
    ("=", "%3D"),
    ("#", "%23"),
    (" ", "%20"),
    ("char(9)", "%09"),
    ("char(10)", "%0A"),
    ("char(13)", "%0D"),
)


def without_bytecode_off(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without ``PYTHONDONTWRITEBYTECODE``: both sides' Python caches its compiled
    modules, as on a user's machine (an environment that turns it off, as some CI images
    do, would charge the compilation of every module to every run, the connector's editable
    install more than drt's pip-installed one)."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def drt_venv(root: Path) -> Path:
    """The ``drt`` executable of a venv under ``root`` holding drt-core ``DRT_VERSION``
    (made with pip from the configured index the first time; reused while the version holds)."""
    venv = root / f"drt-{DRT_VERSION}"
    drt = venv / "bin" / "drt"
    if drt.exists() and _installed_version(venv) == DRT_VERSION:
        return drt
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"drt-core=={DRT_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"pip could not install drt-core {DRT_VERSION}:\n{pip.stderr[-2000:]}")
    if _installed_version(venv) != DRT_VERSION:
        raise RuntimeError(f"drt-core {DRT_VERSION} did not install into {venv}")
    return drt


def _base_python() -> str:
    """The interpreter this venv was made from (a venv's python would nest venvs)."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    return str(base) if base.exists() else sys.executable


def _installed_version(venv: Path) -> str | None:
    got = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m;print(m.version('drt-core'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return got.stdout.strip() if got.returncode == 0 else None


def drt_env(home: Path) -> dict[str, str]:
    """drt's environment: its ``~/.drt`` (profiles) under ``home``, no telemetry."""
    return {
        **without_bytecode_off(os.environ),
        "HOME": str(home),
        "DRT_TELEMETRY": "0",
        "DO_NOT_TRACK": "1",
        "NO_COLOR": "1",
    }


def encoded_sql(column: str) -> str:
    """SQLite expression: ``column`` percent-encoded for a Target batch file, NULL as ''."""
    expr = column
    for raw, escaped in _ESCAPES:
        needle = raw if raw.startswith("char(") else "'" + raw + "'"
        expr = f"replace({expr}, {needle}, '{escaped}')"
    return f"coalesce({expr}, '')"


def _write_project(project: Path, db: Path, syncs: dict[str, Any]) -> None:
    shutil.rmtree(project, ignore_errors=True)
    (project / "syncs").mkdir(parents=True)
    (project / "drt_project.yml").write_text("name: peer_bench\nprofile: peer\n")
    home = project / "home"
    (home / ".drt").mkdir(parents=True)
    (home / ".drt" / "profiles.yml").write_text(
        json.dumps({"peer": {"type": "sqlite", "database": str(db)}})
    )
    for name, sync in syncs.items():  # JSON is YAML
        (project / "syncs" / f"{name}.yml").write_text(json.dumps({"name": name, **sync}))


def _options(batch_size: int) -> dict[str, object]:
    return {
        "mode": "full",
        "batch_size": batch_size,
        "rate_limit": {"requests_per_second": 0},  # 0: no pacing (drt's default is 10/s)
        "on_error": "skip",
    }


def copernica_project(
    project: Path, db: Path, base_url: str, database: str, part: int = 0, parts: int = 1
) -> None:
    """A project POSTing each row to Copernica; with ``parts`` > 1 only its share of the rows
    (``rowid % parts == part``), for one of ``parts`` drt processes run in parallel (each
    with a project of its own: drt keeps run state in its project folder)."""
    fields = ", ".join(f'"{c}": {{{{ row.{c} | tojson_safe }}}}' for c in (ID, *PARAMS))
    where = f" WHERE rowid % {parts} = {part}" if parts > 1 else ""
    sync = {
        "model": f"SELECT {ID}, {', '.join(PARAMS)} FROM {TABLE}{where}",
        "destination": {
            "type": "rest_api",
            "url": f"{base_url}/database/{database}/profiles",
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body_template": '{"fields": {' + fields + "}}",
        },
        "sync": _options(1_000),
    }
    _write_project(project, db, {"copernica": sync})


TARGET_ROWS_PER_FILE = 100_000  # the table's hostile values make 400,000 rows over 50 MB
TARGET_HEADER = ",".join(("thirdPartyId", *PARAMS))
TARGET_TEMPLATE = (
    "batch="
    + TARGET_HEADER
    + "\n{% for r in rows %}"
    + ",".join("{{ r.%s }}" % c for c in (ID, *PARAMS))  # noqa: UP031 (Jinja braces)
    + "\n{% endfor %}"
)


def target_model(encode: bool = True) -> str:
    """drt's model for Target: the table's columns, percent-encoded in SQL (``encode``)."""
    select = ", ".join(f"{encoded_sql(c) if encode else c} AS {c}" for c in (ID, *PARAMS))
    return f"SELECT {select} FROM {TABLE}"


def target_project(
    project: Path, db: Path, base_url: str, client: str = "demo", encode: bool = True
) -> None:
    """A project POSTing the table as Target v2 batch files of ``TARGET_ROWS_PER_FILE`` rows.
    ``encode=False``: the values as they are, as drt's docs would have it (what the
    read-back must catch)."""
    syncs = {
        "target": {
            "model": target_model(encode),
            "destination": {
                "type": "rest_api",
                "url": f"{base_url}/m2/{client}/v2/profile/batchUpdate",
                "method": "POST",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body_mode": "batch",
                "max_records_per_request": TARGET_ROWS_PER_FILE,
                "batch_template": TARGET_TEMPLATE,
            },
            "sync": _options(TARGET_ROWS_PER_FILE),
        }
    }
    _write_project(project, db, syncs)


def target_bodies(db: Path) -> list[bytes]:
    """The bodies drt's Target project POSTs, rendered here from the same model and template
    (Jinja, as drt renders them): for timing the sandbox alone on drt's bytes."""
    import sqlite3

    import jinja2

    template = jinja2.Environment().from_string(TARGET_TEMPLATE)
    con = sqlite3.connect(db)
    try:
        cursor = con.execute(target_model())
        names = [d[0] for d in cursor.description]
        bodies = []
        while part := cursor.fetchmany(TARGET_ROWS_PER_FILE):
            rows = [dict(zip(names, row, strict=True)) for row in part]
            bodies.append(template.render(rows=rows).encode())
        return bodies
    finally:
        con.close()
