"""The instance's concurrency pools: one per destination account, created before any run.

Each destination's delivery assets run in the pool ``destination_pool`` names. Dagster creates a
pool it does not know when a step first claims it; on PostgreSQL two runs doing so at once race
(``UniqueViolation`` on ``concurrency_limits_concurrency_key_key``) and one of them crashes, so a
deployment creates its pools up front (``connector deploy init``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from connector.defs.assets import destination_pool
from connector.mapping import MappingsInvalid, load_mappings
from connector.settings import Settings


class PoolsUnsupported(Exception):
    """The instance's storage keeps no pools (a storage from before Dagster's pools)."""


@dataclass(frozen=True)
class PoolLimit:
    """A pool's limit as ``set_pool_limits`` left it, and what it was before."""

    pool: str
    limit: int
    before: int | None  # None: the pool did not exist
    was_default: bool = False  # created lazily at the instance's default limit

    @property
    def changed(self) -> bool:
        return self.before != self.limit or self.was_default

    def describe(self) -> str:
        if self.before is None:
            return f"{self.pool}: created, limit {self.limit}"
        if not self.changed:
            return f"{self.pool}: limit {self.limit} already"
        default = " (the instance's default)" if self.was_default else ""
        return f"{self.pool}: limit {self.before}{default} -> {self.limit}"


def destination_pools(settings: Settings) -> list[str]:
    """The pool of every destination account the mappings in ``settings.mappings_dir`` feed."""
    mappings, errors = load_mappings(settings.mappings_dir)
    if errors:
        raise MappingsInvalid(errors)
    return sorted({destination_pool(settings, m.destination) for m in mappings})


def set_pool_limits(
    instance: dg.DagsterInstance, pools: Sequence[str], limit: int
) -> list[PoolLimit]:
    """Give each of ``pools`` ``limit`` slots on ``instance``, creating the ones it lacks; a
    pool already at ``limit`` is left as it is, so running it again changes nothing. The
    same as ``dagster instance concurrency set <pool> <limit>`` for each pool."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise PoolsUnsupported(
            "the Dagster instance's storage keeps no concurrency pools: "
            "run `dagster instance migrate` on it first"
        )
    known = {p.name: p for p in storage.get_pool_limits()}
    results = []
    for pool in pools:
        existing = known.get(pool)
        result = PoolLimit(
            pool,
            limit,
            before=existing.limit if existing is not None else None,
            was_default=bool(existing is not None and existing.from_default),
        )
        if result.changed:
            storage.set_concurrency_slots(pool, limit)
        results.append(result)
    return results
