"""Storage test fixtures: a PostgreSQL ledger database of the test's own, as the ledger's
own tests make it."""

from __future__ import annotations

from tests.ledger.conftest import fresh_postgres_url  # noqa: F401
