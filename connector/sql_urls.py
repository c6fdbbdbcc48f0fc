"""Database URLs with the drivers the connector installs.

A URL without a driver (``postgresql://``, ``mysql://``) makes SQLAlchemy pick its default
driver for the dialect, which the connector does not install (psycopg 3 for PostgreSQL
since SQLAlchemy 2.1, mysqlclient for MySQL). :func:`with_installed_driver` names the one it
does install: ``psycopg2`` for PostgreSQL (``postgres://`` too, the spelling many hosting
services hand out) and ``pymysql`` for MySQL/MariaDB. A URL that names a driver is left as
it is, so a user who installs another one keeps it.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

INSTALLED_DRIVERS = {
    "postgresql": "postgresql+psycopg2",
    "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
}


def with_installed_driver(url: str | URL) -> URL:
    """``url`` with the installed driver when it names a dialect but no driver."""
    parsed = make_url(url) if isinstance(url, str) else url
    driver = INSTALLED_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed
