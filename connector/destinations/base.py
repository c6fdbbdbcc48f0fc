"""The seam between the delivery engine (``connector.delivery``) and one destination account.

A :class:`Destination` takes a batch of the account's outbox and reports what became of its
rows; the engine claims, charges quota, records outcomes and re-queues without knowing which
API is behind it. Implemented by ``target.TargetDestination`` (Bulk Profile Update v1 and v2)
and ``copernica.CopernicaDestination``.

What a call can end in, and who handles it::

    submit(batch) -> Accepted           the service took the batch; follow it with status()
                  -> Settled            the rows' outcomes are known now (Copernica's PUTs)
    status(batch) -> Processing         not final yet
                  -> Stuck              the service will not finish it: re-queue its rows
                  -> Settled            final, with the rows that did not land
    read_back(id, identity type) -> the stored params, or None: no such profile

    DeliveryError                         (connector.destinations.http)
     +-- TransientError                   retried inside the client
     +-- RetriesExhausted                 provably not processed: same attempt, later
     +-- AmbiguousSubmitError             may have taken effect: a new attempt
     +-- ProtocolError                    an answer that cannot be read: a new attempt
     +-- RejectedError                    refused for what was sent: a new attempt
     |    +-- AuthError                   refused for the credentials: stop, keep the attempt
     |         +-- ConfigurationError    a database (or path) the service lacks: stop the run
     +-- NotFoundError                    a status that is gone: settle by read-back

The engine tells a destination where its account's :class:`CallLimiter` comes from
(:data:`CallLimits`; ``delivery.call_limit`` keeps the limit in the ledger, so every process
of a deployment shares it); the client makes each call to a metered API, every retry
included, inside ``limiter.call()``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from connector.outbox.files import OutboxFile


class CallLimiter(Protocol):
    """The calls-per-minute limit of one destination account, shared by all its callers."""

    def call(self) -> AbstractContextManager[float]:
        """Wait (sleeping) until the account may make one more call, and hold that call's
        place in the limit while the block runs: the block makes exactly one request. The
        context's value is the seconds waited."""
        ...


CallLimits = Callable[[str, int], CallLimiter]
"""Where a destination gets its account's limiter: ``(account key, calls per minute)`` ->
the ``CallLimiter`` every caller of that account shares (delivery: ``call_limit``)."""


@dataclass(frozen=True)
class Limits:
    """What the engine must respect at this account (None: not limited)."""

    daily_quota: int | None
    max_in_flight: int | None


@dataclass(frozen=True)
class Accepted:
    """The service took the batch for processing."""

    remote_id: str
    status_url: str
    message: str


@dataclass(frozen=True)
class Processing:
    """The batch is not final yet."""


@dataclass(frozen=True)
class Stuck:
    """The service says it will not finish the batch."""

    reason: str


@dataclass
class Settled:
    """A batch's rows are final. Rows not named in ``failed`` or ``not_found`` landed.

    ``unidentified``: some rows did not land but the answer does not say which (v1 gives
    counts only); the engine then reads the rows back to find them, and this is the reason.
    """

    failed: dict[str, str] = field(default_factory=dict)  # identity -> reason: retry
    not_found: dict[str, str] = field(default_factory=dict)  # final: no profile to update
    unidentified: str | None = None
    successful: int | None = None  # the service's own count, when it gives one
    not_found_count: int | None = None
    notes: list[str] = field(default_factory=list)  # worth a warning, not a failure


class Destination(Protocol):
    """One destination account as the delivery engine sees it."""

    key: str  # ledger.destination_key: "target:<client code>" or "copernica:<database>"
    limits: Limits
    creates_profiles: bool  # False (Target v1): a profile not found is final, not retried
    verify_sample: int  # confirmed rows of each batch read back to verify them (0: none)

    def submit(self, batch: OutboxFile) -> Accepted | Settled:
        """Send one batch; raise a ``DeliveryError`` when it was not taken."""
        ...

    def status(self, status_url: str) -> Processing | Stuck | Settled:
        """Where an accepted batch stands; ``NotFoundError`` when its status is gone."""
        ...

    def read_back(self, identity: str, identity_type: str) -> dict[str, str] | None:
        """The profile's stored params, or None when the service has no such profile."""
        ...

    def close(self) -> None: ...
