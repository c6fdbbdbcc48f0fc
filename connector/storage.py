"""Where files live: a local folder or an object store, named by one path or URL.

A :class:`Location` is parsed from a plain path, a ``file://`` URL or an object-store URL
(``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix``). The object
stores are reached through ``obstore`` (the Rust ``object_store`` crate): streamed
multipart puts and streamed gets, no whole object in memory. Credentials are never part
of a URL: they come from the environment as ``object_store`` reads it (``AWS_*``,
``GOOGLE_*``, ``AZURE_*``; for an S3-compatible server ``AWS_ENDPOINT_URL`` and
``AWS_ALLOW_HTTP=true``).

Contracts, the same for both kinds:

- :meth:`Location.put_file` publishes a finished local file: the object is visible only
  complete (S3 multipart: on completion; a local folder: a temporary name, then a rename).
- A URL returned here is the one every function takes back: an object-store URL, or for a
  local location the file's absolute path (so ledgers that hold plain paths keep working).
- Failures raise :class:`StorageError` naming the URL and the operation, never a
  credential; a missing object raises :class:`ObjectMissing` (a subclass).

Local disk is only a working area and a cache: :func:`fetch` streams an object to a file
under a cache folder the caller removes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import obstore

from connector.object_stores import ObjectMissing, StorageError, errors, reason, store_and_path

OBJECT_SCHEMES = frozenset({"s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "memory"})
"""URL schemes of object stores (``memory://`` is obstore's in-process store)."""

CHUNK_BYTES = 8 << 20
"""Bytes per multipart part and per read: S3 needs parts of at least 5 MiB."""

TMP_PREFIX = ".tmp-"
"""Names of local files still being written (never listed as objects)."""


@dataclass(frozen=True)
class ObjectInfo:
    """An object's name (its key under the location listed), URL, size, ETag and mtime.

    A local file's ``etag`` is its size and mtime in nanoseconds (a change detector, as
    ``object_store``'s local store makes one), not a content hash.
    """

    name: str
    url: str
    size: int
    etag: str | None
    mtime: datetime


@dataclass(frozen=True)
class Location:
    """A folder or an object-store prefix; ``str()`` is its URL (a local one: its path)."""

    url: str

    @classmethod
    def parse(cls, value: str | os.PathLike[str]) -> Location:
        """A location from a plain path, ``file://`` URL or object-store URL.

        Raises ``ValueError`` for a URL with credentials in it or a scheme no store has.
        """
        text = os.fspath(value).strip()
        if not text:
            raise ValueError("an empty path is not a storage location")
        scheme = _scheme(text)
        if scheme == "file":
            parts = urlsplit(text)
            return cls(str(Path(parts.path).absolute()))
        if scheme is None:
            return cls(str(Path(text).expanduser().absolute()))
        if scheme not in OBJECT_SCHEMES:
            raise ValueError(
                f"{text.split('://')[0]}://...: not a storage URL "
                f"(use a path, file://, or one of {', '.join(sorted(OBJECT_SCHEMES))})"
            )
        parts = urlsplit(text)
        if parts.username or parts.password or parts.query:
            raise ValueError(
                f"{scheme}://{parts.hostname}/...: credentials or options do not belong in a "
                "storage URL; set them in the environment (AWS_*, GOOGLE_*, AZURE_*)"
            )
        if not parts.netloc and scheme != "memory":
            raise ValueError(f"{text}: no bucket or container in the URL")
        prefix = parts.path.strip("/")
        return cls(f"{scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else ""))

    def __str__(self) -> str:
        return self.url

    @property
    def is_local(self) -> bool:
        """True for a folder on this machine's disk."""
        return _scheme(self.url) is None

    @property
    def local_path(self) -> Path:
        """The folder (a local location only)."""
        if not self.is_local:
            raise ValueError(f"{self.url} is not a local folder")
        return Path(self.url)

    def join(self, key: str) -> Location:
        """The location of ``key`` (``a/b.txt``) under this one."""
        key = key.strip("/")
        if not key or any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"{key!r}: not a key (parts separated by '/', no '..')")
        return Location(f"{self.url.rstrip('/')}/{key}")

    def url_of(self, key: str) -> str:
        """The URL of ``key`` under this location."""
        return self.join(key).url

    def put_file(self, local_path: Path, key: str, *, move: bool = False) -> str:
        """Publish the finished file ``local_path`` as ``key``; return its URL.

        The object is written in parts as it is read (multipart upload) and becomes
        visible only complete; a local target is written under a temporary name and
        renamed. ``move=True`` removes ``local_path`` once the object is complete (a
        local target on the same disk is then only a rename). An existing object is
        replaced.
        """
        url = self.url_of(key)
        if self.is_local:
            _put_local(Path(local_path), Path(url), move=move)
            return url
        store, path = store_and_path(url)
        with errors(url, "upload to", missing="no such bucket or container"):
            obstore.put(store, path, Path(local_path), chunk_size=CHUNK_BYTES, max_concurrency=4)
        if move:
            Path(local_path).unlink(missing_ok=True)
        return url

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """The objects under this location (and under ``prefix`` in it), by name.

        Local files still being written (``.tmp-*``) are left out.
        """
        base = self.url.rstrip("/")
        if self.is_local:
            root = Path(base)
            if not root.is_dir():
                return []
            found = [
                _local_info(p, p.relative_to(root).as_posix())
                for p in root.rglob("*")
                if p.is_file() and not p.name.startswith(TMP_PREFIX)
            ]
            return sorted((f for f in found if f.name.startswith(prefix)), key=lambda f: f.name)
        store, root_path = store_and_path(base)
        listed = f"{root_path}/{prefix}" if root_path else prefix
        # object_store lists whole path segments: list the folder, then filter by prefix
        folder = listed.rsplit("/", 1)[0] if "/" in listed else None
        infos: list[ObjectInfo] = []
        with errors(base, "list", missing="no such bucket or container"):
            for chunk in obstore.list(store, folder):
                for meta in chunk:
                    if not meta["path"].startswith(listed):
                        continue
                    name = meta["path"][len(root_path) :].lstrip("/")
                    infos.append(_info(name, f"{base}/{name}", meta))
        return sorted(infos, key=lambda f: f.name)


def location(value: str | os.PathLike[str]) -> Location:
    """``Location.parse``: a path or URL as a location."""
    return Location.parse(value)


def is_object_url(value: str | os.PathLike[str]) -> bool:
    """True when ``value`` names an object in a store (not a local path or file://)."""
    return _scheme(os.fspath(value)) in OBJECT_SCHEMES


def head(url: str | os.PathLike[str]) -> ObjectInfo:
    """The object's size, ETag and mtime; ``ObjectMissing`` when there is none."""
    text = os.fspath(url)
    if not is_object_url(text):
        path = _local(text)
        try:
            return _local_info(path, path.name, strict=True)
        except FileNotFoundError:
            raise ObjectMissing(str(path), "head") from None
    store, path_in = store_and_path(text)
    with errors(text, "head"):
        meta = obstore.head(store, path_in)
    return _info(path_in.rsplit("/", 1)[-1], text, meta)


def exists(url: str | os.PathLike[str]) -> bool:
    """True when the object (or local file) is there."""
    try:
        head(url)
    except ObjectMissing:
        return False
    return True


def open_stream(url: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The object's bytes in chunks of about ``chunk_bytes``, read as they are consumed.

    The object is opened before this returns, so a missing one raises ``ObjectMissing``
    here, not at the first chunk; a failure while reading raises ``StorageError``.
    """
    text = os.fspath(url)
    if not is_object_url(text):
        path = _local(text)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise ObjectMissing(str(path), "read") from None
        except OSError as exc:
            raise StorageError(str(path), "read", reason(exc)) from None
        return _local_chunks(fh, str(path), chunk_bytes)
    store, path_in = store_and_path(text)
    with errors(text, "read"):
        result = obstore.get(store, path_in)
    return _remote_chunks(iter(result.stream(min_chunk_size=chunk_bytes)), text)


def fetch(url: str | os.PathLike[str], cache_dir: Path) -> Path:
    """A local file with the object's bytes, streamed to disk under ``cache_dir``.

    A local path is returned as it is (nothing copied): remove ``cache_dir`` after use,
    never the returned path. A cached copy of the same size and ETag is reused.
    """
    text = os.fspath(url)
    if not is_object_url(text):
        path = _local(text)
        if not path.is_file():
            raise ObjectMissing(str(path), "fetch")
        return path
    info = head(text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    target = Path(cache_dir) / digest / (text.rsplit("/", 1)[-1] or "object")
    stamp = target.with_name(f"{target.name}.etag")
    fresh = target.is_file() and stamp.is_file() and target.stat().st_size == info.size
    if fresh and stamp.read_text(encoding="utf-8") == (info.etag or ""):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        with open(tmp, "wb") as fh:
            for chunk in open_stream(text):
                fh.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stamp.write_text(info.etag or "", encoding="utf-8")
    return target


@contextmanager
def scratch(root: Path | None = None) -> Iterator[Path]:
    """A new, empty folder under ``root`` (None: the system's temporary folder), removed
    with everything in it when the block ends: where :func:`fetch` copies go."""
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="fetch-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def delete(url: str | os.PathLike[str]) -> None:
    """Remove the object (or local file); one that is already gone is no error."""
    text = os.fspath(url)
    if not is_object_url(text):
        try:
            _local(text).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(text, "delete", reason(exc)) from None
        return
    store, path_in = store_and_path(text)
    try:
        with errors(text, "delete"):
            obstore.delete(store, path_in)
    except ObjectMissing:
        pass


def fsync_path(path: Path) -> None:
    """Flush a local file's (or folder's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- local files ----------------------------------------------------------------------


def _local(text: str) -> Path:
    return Path(urlsplit(text).path) if text.startswith("file://") else Path(text)


def local_etag(stat: os.stat_result) -> str:
    """A local file's ETag: its size and mtime in nanoseconds, in hex (a change detector, as
    ``object_store``'s local store makes one; not a content hash)."""
    return f"{stat.st_size:x}-{stat.st_mtime_ns:x}"


def _local_info(path: Path, name: str, *, strict: bool = False) -> ObjectInfo:
    stat = path.stat()
    if strict and not path.is_file():
        raise FileNotFoundError(path)
    return ObjectInfo(
        name=name,
        url=str(path),
        size=stat.st_size,
        etag=local_etag(stat),
        mtime=datetime.fromtimestamp(stat.st_mtime, UTC),
    )


def _put_local(source: Path, target: Path, *, move: bool) -> None:
    """``source`` at ``target``, never visible there partly written."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(source, target)
                fsync_path(target.parent)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # another disk: copy below
                    raise
        tmp = target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{target.name}")
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_path(target.parent)
        if move:
            source.unlink(missing_ok=True)
    except FileNotFoundError as exc:
        raise StorageError(str(target), "write", f"{exc.filename}: no such file") from None
    except OSError as exc:
        raise StorageError(str(target), "write", reason(exc)) from None


def _local_chunks(fh: Any, url: str, chunk_bytes: int) -> Iterator[bytes]:
    with fh:
        while True:
            try:
                block = fh.read(chunk_bytes)
            except OSError as exc:
                raise StorageError(url, "read", reason(exc)) from None
            if not block:
                return
            yield block


# --- object stores --------------------------------------------------------------------


def _remote_chunks(chunks: Iterator[Any], url: str) -> Iterator[bytes]:
    while True:
        with errors(url, "read"):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield bytes(chunk)


def _scheme(text: str) -> str | None:
    head_, sep, _ = text.partition("://")
    if not sep or not head_.isascii() or not head_.replace("+", "").isalnum():
        return None
    return "file" if head_.lower() == "file" else head_.lower()


def _info(name: str, url: str, meta: Any) -> ObjectInfo:
    return ObjectInfo(
        name=name,
        url=url,
        size=int(meta["size"]),
        etag=meta.get("e_tag"),
        mtime=meta["last_modified"],
    )
