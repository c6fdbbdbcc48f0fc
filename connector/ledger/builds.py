"""What each build of an account's outbox found, for the delivery run records to count."""

from __future__ import annotations

from sqlalchemy.orm import Session

from connector.ledger.models import OutboxBuild
from connector.ledger.store import Ledger, unit_of_work


def record_outbox_build(
    target: Ledger | Session,
    destination_key: str,
    *,
    changed: int,
    already_sent: int,
    added: int,
    rows: int,
) -> None:
    """Append one build: ``changed`` profiles, ``already_sent`` of them left out, ``rows``
    written, ``added`` of those the profile's first row at the account (the rest updates)."""
    with unit_of_work(target) as session:
        session.add(
            OutboxBuild(
                destination_key=destination_key,
                changed=changed,
                already_sent=already_sent,
                added=added,
                rows=rows,
            )
        )
