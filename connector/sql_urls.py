"""Database URLs: the drivers the connector installs, and URLs as they may be shown.

A URL without a driver (``postgresql://``, ``mysql://``) makes SQLAlchemy pick its default
driver for the dialect, which the connector does not install (psycopg 3 for PostgreSQL
since SQLAlchemy 2.1, mysqlclient for MySQL). :func:`with_installed_driver` names the one it
does install: ``psycopg2`` for PostgreSQL (``postgres://`` too, the spelling many hosting
services hand out) and ``pymysql`` for MySQL/MariaDB. A URL that names a driver is left as
it is, so a user who installs another one keeps it.

A URL's password is a secret: :func:`masked_url` is the URL as logs and messages show it,
and :func:`without_password` takes it out of a driver's own text (an error message) too.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from sqlalchemy.engine import URL, make_url

INSTALLED_DRIVERS = {
    "postgresql": "postgresql+psycopg2",
    "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
}
HIDDEN = "***"


def with_installed_driver(url: str | URL) -> URL:
    """``url`` with the installed driver when it names a dialect but no driver."""
    parsed = make_url(url) if isinstance(url, str) else url
    driver = INSTALLED_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def masked_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
        return parsed.render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it
        return "<unparsable URL>"


def without_password(text: str, url: str | URL) -> str:
    """``text`` (a driver's message) with ``url``'s password replaced by ``***``, in any of
    the spellings a URL may carry it (as given, or percent-encoded)."""
    try:
        password = (make_url(url) if isinstance(url, str) else url).password
    except Exception:  # an unparsable URL: no password known to hide
        return text
    if not password:
        return text
    for spelling in sorted({password, quote(password, safe=""), quote_plus(password)}, key=len)[
        ::-1
    ]:
        text = text.replace(spelling, HIDDEN)
    return text
