"""Which reader a SQL source's rows go through, chosen by its URL's dialect (only here).

| dialect | reader |
|---|---|
| ``postgresql`` | Arrow: ADBC ``adbc-driver-postgresql`` (binary ``COPY ... TO STDOUT``) |
| ``sqlite`` | Arrow: ADBC ``adbc-driver-sqlite`` |
| any other (``mysql``/``mariadb``, ``mssql``, ``oracle`` ...) | SQLAlchemy, streamed |

The Arrow reader takes the rows as record batches straight from the driver, no Python
object per value; it is used where a maintained ADBC driver is published on PyPI by the
Apache Arrow project. The others keep SQLAlchemy's streamed read (``sql.py``). Either way the
mapping gives one SQLAlchemy URL: the ADBC driver's connection is derived from it here.

A read on an Arrow dialect still goes through SQLAlchemy when a column's type has no exact
text rule in ``sql_text`` (``docs/sql-sources.md``); ``sql.py`` logs why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import adbc_driver_postgresql.dbapi as postgresql_dbapi
import adbc_driver_sqlite.dbapi as sqlite_dbapi
from sqlalchemy.engine import URL, make_url

from connector.sql_urls import with_installed_driver


@dataclass(frozen=True)
class ArrowDriver:
    """An ADBC driver for one SQLAlchemy dialect."""

    dialect: str
    package: str  # the PyPI package, as logs and docs name it
    _connect: Callable[..., Any]
    _target: Callable[[URL], str]  # what the driver's connect takes, from the URL

    def connect(self, url: str | URL) -> Any:
        """An ADBC DB-API connection to the database ``url`` (a SQLAlchemy URL) names; in
        autocommit mode, so that no transaction stays open around a read."""
        target = self._target(make_url(url) if isinstance(url, str) else url)
        return self._connect(target, autocommit=True)


def libpq_conninfo(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL, whatever its driver: the
    same host, port, user, password, database and query parameters (``sslmode``,
    ``options`` ...) psycopg2 hands to libpq, as ``key='value'`` pairs."""
    pairs = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
        **{key: ",".join(_values(value)) for key, value in url.query.items()},
    }
    return " ".join(
        f"{key}='{_quoted(value)}'" for key, value in pairs.items() if value is not None
    )


def _quoted(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def sqlite_database(url: URL) -> str:
    """What SQLite opens for a SQLAlchemy SQLite URL: the file (relative to the working
    directory, as for SQLAlchemy), ``:memory:``, or with ``?uri=true`` the ``file:`` URI
    with the URL's other query parameters (``mode=ro`` ...), as pysqlite gets them."""
    database = url.database or ":memory:"
    if str(url.query.get("uri", "")).lower() not in ("true", "1"):
        return database
    params = [(k, v) for k, vs in url.query.items() if k != "uri" for v in _values(vs)]
    return f"{database}?{urlencode(params)}" if params else database


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


ARROW_DRIVERS = {
    "postgresql": ArrowDriver(
        "postgresql", "adbc-driver-postgresql", postgresql_dbapi.connect, libpq_conninfo
    ),
    "sqlite": ArrowDriver("sqlite", "adbc-driver-sqlite", sqlite_dbapi.connect, sqlite_database),
}


def arrow_driver(url: str | URL) -> ArrowDriver | None:
    """The ADBC driver that reads ``url``'s rows as Arrow, or None: SQLAlchemy reads them."""
    return ARROW_DRIVERS.get(with_installed_driver(url).get_backend_name())


class NoArrowReader(ValueError):
    """A source asks for the Arrow reader (``reader: arrow``) on a dialect without one."""


def driver_for(url: str | URL, reader: str) -> ArrowDriver | None:
    """The ADBC driver a source's ``reader`` setting chooses: ``auto`` the dialect's if it
    has one, ``sqlalchemy`` none, ``arrow`` the dialect's or :class:`NoArrowReader`."""
    if reader == "sqlalchemy":
        return None
    driver = arrow_driver(url)
    if driver is None and reader == "arrow":
        dialect = with_installed_driver(url).get_backend_name()
        raise NoArrowReader(
            f"source.reader: arrow, but {dialect} has no Arrow (ADBC) reader; "
            f"those that do: {', '.join(sorted(ARROW_DRIVERS))} (use reader: auto or sqlalchemy)"
        )
    return driver
