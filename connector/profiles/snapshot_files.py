"""Where a profile store's snapshot files live: their folder or key under the profiles
location, a local copy of one in an object store, its upload, and the removal of versions no
reader can still be using (``connector.profiles.store`` decides which version is current).

A snapshot is named by its version (``v0000000042-<id>.parquet``) and never changes once
written, so a local copy is good as long as it is there; a replaced version stays
``READER_GRACE_S`` for the readers (an outbox build, a trace) that opened it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import uuid
from pathlib import Path

from connector.storage import TMP_PREFIX, Location, delete, open_stream

# a replaced snapshot stays this long for the readers that opened it (an outbox build)
READER_GRACE_S = 3600.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def store_key(destination_key: str, mapping: str) -> str:
    """The store's folder (or key prefix) under the profiles location: ``<account>/<mapping>``."""
    return f"{_SAFE.sub('_', destination_key)}/{_SAFE.sub('_', mapping)}"


def store_dir(root: Path, destination_key: str, mapping: str) -> Path:
    """The store's local folder under ``root`` (the profiles folder, or its cache)."""
    return Path(root) / store_key(destination_key, mapping)


def local_copy(url: str, folder: Path) -> Path:
    """The snapshot object ``url`` as a file in ``folder``: the copy already there, else the
    object streamed to a temporary name and renamed (a copy is never seen half written)."""
    target = folder / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{target.name}"
    try:
        with open(tmp, "wb") as fh:
            for chunk in open_stream(url):
                fh.write(chunk)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def upload(location: Location, target: Path, key: str) -> str:
    """Upload the snapshot ``target`` under ``key``; its URL once the object is complete (so
    the ledger never names a partial one). The local file stays as the cache's copy; one
    that could not be uploaded is removed."""
    try:
        return location.put_file(target, f"{key}/{target.name}")
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def version_of(name: str) -> int | None:
    """The version a snapshot's file name carries (``v0000000042-<id>.parquet``)."""
    if not (name.startswith("v") and name.endswith(".parquet")):
        return None
    try:
        return int(name[1:11])
    except ValueError:
        return None


def remove_old(folder: Path, *, keep_from: int) -> None:
    """Delete snapshots older than ``keep_from`` that no reader can still be using: an outbox
    build or a trace opened the version the ledger named then, so older files are kept for
    ``READER_GRACE_S`` after they were replaced (files are named by version, not by time)."""
    cutoff = time.time() - READER_GRACE_S
    for path in folder.glob("v*.parquet"):
        number = version_of(path.name)
        try:
            old = number is not None and number < keep_from and path.stat().st_mtime < cutoff
        except OSError:
            continue
        if old:
            path.unlink(missing_ok=True)


def remove_old_objects(location: Location, key: str, *, keep_from: int) -> None:
    """:func:`remove_old` for the store's objects: a reader in another container may have
    opened an older version, so the same grace applies (the object's mtime is its upload)."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=READER_GRACE_S)
    for info in location.list(f"{key}/"):
        number = version_of(info.name.rsplit("/", 1)[-1])
        if number is not None and number < keep_from and info.mtime < cutoff:
            delete(info.url)
