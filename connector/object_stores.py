"""obstore's side of :mod:`connector.storage`: a store per bucket (and environment), and
its exceptions as :class:`StorageError` / :class:`ObjectMissing` naming the URL, with any
credential the environment holds blanked out of the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlsplit

import obstore
from obstore.store import ObjectStore, from_url

_ENV_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_")
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY")


class StorageError(RuntimeError):
    """An object-store or file operation failed; the message names the URL and the step."""

    def __init__(self, url: str, operation: str, reason: str) -> None:
        self.url = url
        self.operation = operation
        super().__init__(f"{operation} {url}: {reason}")


class ObjectMissing(StorageError):
    """The object (or local file) a URL names does not exist."""

    def __init__(self, url: str, operation: str) -> None:
        super().__init__(url, operation, "no such object")


def store_and_path(url: str) -> tuple[ObjectStore, str]:
    """The store of the URL's bucket (one per bucket and environment) and the object path."""
    parts = urlsplit(url)
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)))
    return _store(f"{parts.scheme}://{parts.netloc}", env), parts.path.strip("/")


@lru_cache(maxsize=32)
def _store(root: str, env: tuple[tuple[str, str], ...]) -> ObjectStore:
    # ``env`` is only the cache key: object_store reads the environment itself, and a test
    # (or a process that changes its credentials) gets a store for the new values
    del env
    try:
        return from_url(root)
    except Exception as exc:
        raise StorageError(root, "open store", reason(exc)) from None


@contextmanager
def errors(url: str, operation: str, *, missing: str = "") -> Iterator[None]:
    """Turn obstore's exceptions into ``StorageError`` / ``ObjectMissing`` for ``url``.

    ``missing`` is the reason to give when "not found" is not about the object itself (an
    upload or a listing whose bucket does not exist).
    """
    try:
        yield
    except StorageError:
        raise
    except (FileNotFoundError, obstore.exceptions.NotFoundError):
        if missing:
            raise StorageError(url, operation, missing) from None
        raise ObjectMissing(url, operation) from None
    except Exception as exc:
        raise StorageError(url, operation, reason(exc)) from None


def reason(exc: BaseException) -> str:
    """The first line of an error, with any credential from the environment blanked."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for key, value in os.environ.items():
        secret = key.startswith(_ENV_PREFIXES) and any(w in key for w in _SECRET_WORDS)
        if secret and len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    return f"{type(exc).__name__}: {text}"[:500]
