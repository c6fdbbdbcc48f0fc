"""URLs without a driver get the one the connector installs (psycopg2, pymysql)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from connector.ledger import Ledger, QuotaUse
from connector.sql_urls import with_installed_driver


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p%40ss@db:5432/crm", "postgresql+psycopg2"),
        ("postgres://u@db/crm", "postgresql+psycopg2"),
        ("mysql://root@127.0.0.1:3306/test", "mysql+pymysql"),
        ("postgresql+asyncpg://u@db/crm", "postgresql+asyncpg"),  # a driver named stays
        ("sqlite:///state/ledger.db", "sqlite"),
    ],
)
def test_a_url_without_a_driver_gets_the_installed_one(given: str, driver: str) -> None:
    url = with_installed_driver(given)
    assert url.drivername == driver
    # everything else of the URL is kept, the password's escaping too
    original = make_url(given)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        original.username,
        original.password,
        original.host,
        original.port,
        original.database,
    )


@pytest.mark.postgres
def test_the_ledger_opens_a_plain_postgresql_url(fresh_postgres_url: str) -> None:
    plain = make_url(fresh_postgres_url).set(drivername="postgresql")
    ledger = Ledger(plain.render_as_string(hide_password=False))
    try:
        ledger.upgrade()  # the migrations run over the same engine
        with ledger.session() as session:
            assert list(session.scalars(select(QuotaUse))) == []
    finally:
        ledger.dispose()
