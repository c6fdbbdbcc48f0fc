"""The ``Destination`` implementations: Target (Bulk Profile Update v1 and v2) and Copernica.

Each wraps its API client (``target.TargetClient``, ``copernica.CopernicaClient``) and says
what the delivery engine needs to know of the account in the engine's terms
(``destinations.base``). :func:`open_destination` builds the one a destination name stands
for, its client spacing calls with the account's limiter (``base.CallLimits``); tests hand in
a client of their own (fast retries, another transport), which keeps its own limiter.
"""

from __future__ import annotations

import logging

from connector.destinations.base import (
    Accepted,
    CallLimits,
    Destination,
    Limits,
    Processing,
    Settled,
    Stuck,
)
from connector.destinations.copernica import CopernicaClient
from connector.destinations.copernica_fields import FieldCheck
from connector.destinations.http import (
    AuthError,
    ConfigurationError,
    ProtocolError,
    RetriesExhausted,
    TransientError,
)
from connector.destinations.target import TargetClient
from connector.destinations.target_answers import ROW_SUCCESS, STATUS_COMPLETE, STATUS_STUCK
from connector.outbox.files import OutboxFile
from connector.settings import Settings

log = logging.getLogger(__name__)


class TargetDestination:
    """A Target client code: batches accepted, then followed through ``batchStatus``."""

    def __init__(
        self,
        settings: Settings,
        key: str,
        client: TargetClient | None = None,
        *,
        call_limits: CallLimits | None = None,
    ) -> None:
        self.key = key
        self.limits = Limits(
            daily_quota=settings.daily_quota, max_in_flight=settings.target.max_in_flight
        )
        # v1 never creates profiles: a profile it does not find stays not found
        self.creates_profiles = settings.target.api_version != "v1"
        self.verify_sample = int(settings.target.verify_sample)
        self._own = client is None
        if client is None:
            # one limit per client code, for every API of the account (PROTOCOLS.md)
            limiter = call_limits(key, settings.target.calls_per_minute) if call_limits else None
            client = TargetClient(settings.target, limiter=limiter)
        self.client = client

    def submit(self, batch: OutboxFile) -> Accepted:
        answer = self.client.submit(batch.path)
        return Accepted(answer.batch_id, answer.status_url, answer.message)

    def status(self, status_url: str) -> Processing | Stuck | Settled:
        status = self.client.batch_status(status_url)
        if status.status == STATUS_STUCK:
            return Stuck("the service reports the batch stuck")
        if status.status != STATUS_COMPLETE:
            return Processing()
        # v2 lists failed rows (only those, since May 2020); v1 gives counts only. The
        # reason does not name the batch (the row outcome belongs to it, and its remote id
        # is the batch's): one failure in several batches is one reason in the report
        failed = {
            ident: f"Target's row status: {word}"
            for ident, word in status.rows.items()
            if word != ROW_SUCCESS
        }
        unidentified = None
        if not status.rows and (status.failed or 0) + (status.not_found or 0) > 0:
            unidentified = (
                f"{status.failed or 0} failed / {status.not_found or 0} not found reported"
            )
        return Settled(
            failed=failed,
            unidentified=unidentified,
            successful=status.successful,
            not_found_count=status.not_found,
        )

    def read_back(self, identity: str, identity_type: str) -> dict[str, str] | None:
        return self.client.fetch_profile(identity, identity_type)

    def close(self) -> None:
        if self._own:
            self.client.close()


class CopernicaDestination:
    """A Copernica database: every profile PUT during the submit, so a batch settles there.

    Opening it reads the database's fields once: a database the service does not have stops
    delivery right there (``ConfigurationError``), before any batch is claimed. The first
    batch of each param set is checked against the fields (``copernica_fields``). A batch
    none of whose PUTs reached the service raises ``RetriesExhausted``: it goes back to the
    queue with its attempt unspent, as a Target batch the service never accepted.
    """

    def __init__(self, settings: Settings, key: str, client: CopernicaClient | None = None) -> None:
        self.key = key
        self.limits = Limits(daily_quota=None, max_in_flight=None)
        self.creates_profiles = True  # PUT with create=1
        self.verify_sample = 0  # a PUT's answer is per profile already
        self._settings = settings.copernica
        self._given = client
        self._clients: dict[str, CopernicaClient] = {}
        self._fields = self._read_fields()

    def _read_fields(self) -> FieldCheck | None:
        probe = self._given or CopernicaClient(self._settings, match_field="")
        try:
            names = probe.database_fields()
        finally:
            if probe is not self._given:
                probe.close()
        if not names:
            # none read, or a database without fields (nothing to hold a param against)
            log.info("copernica: no fields of database %s to check params against", self.key)
            return None
        return FieldCheck(self._settings.database, names)

    def _client(self, match_field: str) -> CopernicaClient:
        if self._given is not None:
            return self._given
        if match_field not in self._clients:
            self._clients[match_field] = CopernicaClient(self._settings, match_field=match_field)
        return self._clients[match_field]

    def submit(self, batch: OutboxFile) -> Settled:
        notes: list[str] = []
        if self._fields is not None:
            self._fields.require_match_field(batch.identity_type)
            notes = self._fields.notes(batch.param_names())
        client = self._client(batch.identity_type)
        outcomes = client.put_many(batch.rows())
        pace = client.last_pace
        if pace is not None:
            log.info(
                "%s: %d profiles PUT, %d of them retried; concurrency %d, at most %d, %d cuts",
                self.key,
                len(outcomes),
                sum(1 for r in outcomes if r.attempts > 1),
                pace.start,
                pace.peak,
                pace.cuts,
            )
        config = next((r.error for r in outcomes if r.config_error), None)
        if config is not None:
            raise ConfigurationError(f"copernica database {self._settings.database!r}: {config}")
        if outcomes and not any(r.ok for r in outcomes) and any(r.auth_refused for r in outcomes):
            first = next(r.error for r in outcomes if r.auth_refused)
            raise AuthError(f"credentials refused: {first}")
        if outcomes and all(r.unreachable for r in outcomes):
            # nothing reached the service: the batch waits, its attempt unspent (as a
            # Target submit that never got through)
            reason = f"copernica {self.key} unreachable: {outcomes[0].error}"
            raise RetriesExhausted(reason, TransientError(reason))
        return Settled(
            failed={r.identity: r.error or "not confirmed" for r in outcomes if not r.ok},
            notes=notes,
        )

    def status(self, status_url: str) -> Processing | Stuck | Settled:
        raise ProtocolError("a Copernica batch settles when it is submitted; nothing to poll")

    def read_back(self, identity: str, identity_type: str) -> dict[str, str] | None:
        found = self._client(identity_type).find_profiles(identity)
        if not found:
            return None
        return self._fields.as_params(found[0]) if self._fields is not None else found[0]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def open_destination(
    settings: Settings,
    name: str,
    key: str,
    client: TargetClient | CopernicaClient | None = None,
    *,
    call_limits: CallLimits | None = None,
) -> Destination:
    """The destination ``name`` (target | copernica) stands for, at account ``key``.

    ``call_limits``: where the client built here gets the account's calls-per-minute limiter
    (Target's batchUpdate and batchStatus calls; Copernica has no call limit); None: calls
    are not spaced (delivery always gives one; a read-back alone needs none). A given
    ``client`` keeps its own limiter."""
    if name == "target":
        if client is not None and not isinstance(client, TargetClient):
            raise TypeError(
                f"a Target destination takes a TargetClient, not {type(client).__name__}"
            )
        return TargetDestination(settings, key, client, call_limits=call_limits)
    if name == "copernica":
        if client is not None and not isinstance(client, CopernicaClient):
            raise TypeError(
                f"a Copernica destination takes a CopernicaClient, not {type(client).__name__}"
            )
        return CopernicaDestination(settings, key, client)
    raise ValueError(f"unknown destination {name!r} (use target or copernica)")
