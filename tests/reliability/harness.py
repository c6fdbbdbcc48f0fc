"""Drive nights of extract -> profile stores -> outbox -> delivery against the sandbox on a
controllable clock.

Nothing sleeps: the sandbox, the connector's ``now``, the call limiter and the retry back-off
all read one ``FakeClock``, and waiting advances it.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, func, select

from connector import delivery, pipeline
from connector.delivery.call_limit import LedgerCallLimiter
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import RetryPolicy
from connector.destinations.target import TargetClient
from connector.ledger import Batch, Ledger
from connector.outbox import build as outbox_build
from connector.settings import Settings

from .world import START, World


class SimulatedCrash(BaseException):
    """The in-process stand-in for a SIGKILL (a BaseException: no ``except Exception`` in
    the connector stops it). The process-level kills are in test_crashes."""


class StateChangeTrap:
    """Calls ``hit`` at the ``nth`` commit of ``ledger`` that moves a batch into ``state``,
    by an INSERT of a new batch (``kind="insert"``) or an UPDATE of ``batches.state``
    (``"update"``, the default; ``None``: either): ``before`` the commit (the change is then
    lost) or ``after`` it (at the ledger's next statement). Seen at the engine, so every
    write of a state counts, whichever function does it. Used as a context manager."""

    def __init__(
        self,
        ledger: Ledger,
        state: str,
        when: str,
        hit: Callable[[], None],
        *,
        nth: int = 1,
        kind: str | None = None,
    ) -> None:
        self.engine, self.state, self.when, self.hit, self.nth = (
            ledger.engine,
            state,
            when,
            hit,
            nth,
        )
        verbs = {"insert": ("INSERT INTO BATCHES",), "update": ("UPDATE BATCHES",)}
        self.verbs = verbs[kind] if kind else verbs["insert"] + verbs["update"]
        self.seen = 0
        self.fired = False
        self._after_armed = False

    def __enter__(self) -> StateChangeTrap:
        event.listen(self.engine, "before_cursor_execute", self._watch)
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "rollback", self._rollback)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._watch)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)

    def _fire(self) -> None:
        self.fired = True
        self.hit()

    def _watch(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, *_: Any
    ) -> None:
        if self._after_armed:
            self._after_armed = False
            self._fire()
        if self.fired or not statement.lstrip()[:24].upper().startswith(self.verbs):
            return
        compiled = getattr(context, "compiled_parameters", None) or []
        if any(p.get("state") == self.state for p in compiled):
            conn.info["moves_into_state"] = True

    def _commit(self, conn: Any) -> None:
        if not conn.info.pop("moves_into_state", False) or self.fired:
            return
        self.seen += 1
        if self.seen != self.nth:
            return
        if self.when == "before":
            self._fire()
        else:
            self._after_armed = True

    def _rollback(self, conn: Any) -> None:
        conn.info.pop("moves_into_state", None)


def crash_at_state_change(ledger: Ledger, state: str, when: str, nth: int) -> StateChangeTrap:
    """A trap that raises :class:`SimulatedCrash` (the soak's crashes)."""

    def crash() -> None:
        raise SimulatedCrash(f"crash {when} a batch became {state}")

    return StateChangeTrap(ledger, state, when, crash, nth=nth)


class FakeClock:
    """Seconds since the epoch, moved only by ``advance`` (thread-safe)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start or dt.datetime.combine(START, dt.time(0, 30), dt.UTC)
        self._now = start.timestamp()
        self._lock = threading.Lock()
        self.slept = 0.0

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += max(float(seconds), 0.0)
            return self._now

    def sleep(self, seconds: float) -> None:
        self.slept += max(seconds, 0.0)
        self.advance(seconds)

    @property
    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self(), dt.UTC)

    def to_next_day(self, at: dt.time = dt.time(0, 30)) -> None:
        nxt = dt.datetime.combine(self.now.date() + dt.timedelta(days=1), at, dt.UTC)
        self.advance((nxt - self.now).total_seconds())


@dataclass
class Clients:
    target: TargetClient
    copernica: CopernicaClient

    def close(self) -> None:
        self.target.close()
        self.copernica.close()


def make_clients(settings: Settings, clock: FakeClock, ledger: Ledger, seed: int = 7) -> Clients:
    """The destinations' clients on ``clock``; Target's calls spaced by the account's limit in
    ``ledger`` (read on ``clock`` too)."""
    policy = RetryPolicy(
        max_attempts=6, base_delay_s=0.5, max_delay_s=30, max_total_s=300, rng=random.Random(seed)
    )
    limiter = LedgerCallLimiter(
        ledger,
        f"target:{settings.target.client_code}",
        settings.target.calls_per_minute,
        clock=clock,
        sleep=clock.sleep,
    )
    target = TargetClient(
        settings.target, limiter=limiter, retry=policy, sleep=clock.sleep, clock=clock
    )
    cop_policy = RetryPolicy(
        max_attempts=6, base_delay_s=0.5, max_delay_s=30, max_total_s=300, rng=random.Random(seed)
    )
    copernica = CopernicaClient(
        settings.copernica,
        match_field="customerid",
        retry=cop_policy,
        sleep=clock.sleep,
        clock=clock,
    )
    return Clients(target, copernica)


@dataclass
class Figures:
    nights: int = 0
    source_rows: int = 0
    profiles_changed: int = 0  # outbox candidates: changed in a store since the last build
    profiles_already_sent: int = 0  # of those, whole rows equal to the last sent or confirmed
    rows_queued: int = 0
    submitted_batches: int = 0
    rows_submitted: int = 0
    ambiguous_submits: int = 0
    returned_to_queue: int = 0
    rows_requeued: int = 0
    rows_dead: int = 0
    stuck: int = 0
    expired: int = 0
    poll_errors: int = 0
    retry_sleeps_s: float = 0.0
    stops: dict[str, int] = field(default_factory=dict)

    def add_builds(self, results: list[outbox_build.BuildResult]) -> None:
        for r in results:
            self.profiles_changed += r.candidates
            self.profiles_already_sent += r.unchanged
            self.rows_queued += r.rows

    def add_drain(self, r: delivery.DrainResult) -> None:
        self.submitted_batches += len(r.submitted)
        self.rows_submitted += r.rows_submitted
        self.ambiguous_submits += len(r.ambiguous)
        self.returned_to_queue += len(r.returned_to_queue)
        self.stops[r.stopped_because] = self.stops.get(r.stopped_because, 0) + 1

    def add_poll(self, r: delivery.PollResult) -> None:
        self.rows_requeued += r.rows_requeued
        self.rows_dead += r.rows_dead
        self.stuck += len(r.stuck)
        self.expired += len(r.expired)
        self.poll_errors += len(r.errors)


def open_batches(ledger: Ledger) -> int:
    with ledger.session() as s:
        return int(
            s.scalar(
                select(func.count(Batch.id)).where(
                    Batch.state.in_(("queued", "claimed", "submitted"))
                )
            )
            or 0
        )


def deliver(
    settings: Settings,
    ledger: Ledger,
    clients: Clients,
    clock: FakeClock,
    figures: Figures,
    *,
    rounds: int = 40,
) -> int:
    """Drain and poll both destinations until nothing is open (or ``rounds`` ran out)."""
    for _ in range(rounds):
        figures.add_drain(
            delivery.drain(
                settings, ledger, destination="target", now=clock.now, client=clients.target
            )
        )
        figures.add_drain(
            delivery.drain(
                settings, ledger, destination="copernica", now=clock.now, client=clients.copernica
            )
        )
        clock.advance(30)
        figures.add_poll(
            delivery.poll(
                settings, ledger, destination="target", now=clock.now, client=clients.target
            )
        )
        clock.advance(60)
        left = open_batches(ledger)
        if left == 0:
            return 0
    return open_batches(ledger)


def build_outboxes(
    settings: Settings, ledger: Ledger, mappings: list[Any]
) -> list[outbox_build.BuildResult]:
    """Each account's outbox from the stores of ``mappings`` (what `D/outbox` does)."""
    names: dict[str, list[str]] = {}
    for mapping in mappings:
        names.setdefault(str(mapping.destination), []).append(mapping.name)
    return [
        outbox_build.build(settings, ledger, destination, mappings=chosen)
        for destination, chosen in sorted(names.items())
    ]


def prepare_all(
    world: World, settings: Settings, ledger: Ledger, *days: str
) -> list[outbox_build.BuildResult]:
    """Every mapping's stages for each of ``days``, then every account's outbox."""
    for day in days:
        for mapping in world.mappings:
            pipeline.prepare(mapping, day, settings, ledger)
    return build_outboxes(settings, ledger, world.mappings)


def run_night(
    world: World,
    settings: Settings,
    ledger: Ledger,
    clients: Clients,
    clock: FakeClock,
    figures: Figures,
    night: int,
    **night_kw: Any,
) -> int:
    before = world.rows_written
    day = world.night(night, **night_kw)
    figures.source_rows += world.rows_written - before
    figures.add_builds(prepare_all(world, settings, ledger, day))
    left = deliver(settings, ledger, clients, clock, figures)
    figures.nights += 1
    clock.to_next_day()
    return left
