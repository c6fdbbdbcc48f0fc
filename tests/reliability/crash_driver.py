"""A connector process for crash tests: ``python -m tests.reliability.crash_driver CONFIG.json``.

CONFIG: ``{"root": ..., "url": ..., "days": [partitions to prepare], "deliver": true,
"now_offset_s": 0, "settings": {...}}``: prepare those days (every mapping's stages, as the
mapping assets do), build every account's outbox once (``D/outbox``), then drain and poll until
settled. ``RELIABILITY_KILL=<point>[:<n>]`` makes the process SIGKILL itself at the n-th pass
(default 1st) through one point. The kill points are installed here, by wrapping library
functions in this test process only: the library itself has no hook (nothing inert to leave in
production).

Points while preparing: ``extract`` (a chunk being mapped), ``store-publish`` (a merged
snapshot written beside the store, before the ledger's compare-and-set moves the store to it).
In the outbox build: ``batch-write`` (bytes of a batch file being written), ``batch-register``
(a batch file renamed into the outbox, before its ledger row), ``outbox-mark`` (every batch of
the build registered, before the stores' ``built_version`` moves). While delivering:
``submit`` (after the service answered a submit, before it is recorded), ``poll`` (a status
answer received), ``settle`` (after delivered digests were recorded, before the batch's
outcomes), ``requeue`` (a batch marked failed/stuck, before its profiles' current rows are
written as a retry), ``requeue-registered`` (the retry batch registered, before the failed
rows' outcomes say so).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _killer(point: str) -> Callable[[], None]:
    spec = os.environ.get("RELIABILITY_KILL", "")
    if spec.startswith("state:"):  # install_state_kill_point's
        spec = ""
    name, _, nth = spec.partition(":")
    target = int(nth or 1)
    seen = 0

    def maybe_die() -> None:
        nonlocal seen
        if name != point:
            return
        seen += 1
        if seen == target:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return maybe_die


def _wrap(owner: Any, attr: str, point: str, *, after: bool) -> None:
    real = getattr(owner, attr)
    die = _killer(point)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not after:
            die()
        out = real(*args, **kwargs)
        if after:
            die()
        return out

    setattr(owner, attr, wrapped)


def install_kill_points() -> None:
    from connector import ledger, transform
    from connector.delivery import requeue
    from connector.destinations import target
    from connector.outbox import pending
    from connector.profiles import store as profile_store

    _wrap(transform, "map_chunk", "extract", after=False)
    _wrap(profile_store, "_publish", "store-publish", after=False)
    _wrap(pending.PendingFile, "write", "batch-write", after=False)
    _wrap(ledger, "register_batch", "batch-register", after=False)
    _wrap(profile_store, "mark_built", "outbox-mark", after=False)
    _wrap(target.TargetClient, "submit", "submit", after=True)
    _wrap(target.TargetClient, "batch_status", "poll", after=True)
    _wrap(ledger, "record_delivered", "settle", after=True)
    _wrap(requeue, "_requeue_current", "requeue", after=False)
    _wrap(requeue, "_requeue_current", "requeue-registered", after=True)


def state_kill_point(ledger: Any) -> Any:
    """``RELIABILITY_KILL=state:<insert|update>:<state>:<before|after>[:<n>]``: SIGKILL at the
    n-th commit of ``ledger`` that moves a batch into ``<state>`` by an INSERT (a new batch)
    or an UPDATE, just before that commit or just after it (harness.StateChangeTrap); a
    context that does nothing for other kill points."""
    from .harness import StateChangeTrap

    spec = os.environ.get("RELIABILITY_KILL", "")
    if not spec.startswith("state:"):
        return contextlib.nullcontext()
    _, kind, state, when, *nth = spec.split(":")

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    return StateChangeTrap(ledger, state, when, die, nth=int(nth[0]) if nth else 1, kind=kind)


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    install_kill_points()
    from connector.ledger import Ledger

    from .world import World, make_settings

    root = Path(config["root"])
    world = World(root / "world", seed=config.get("seed", 1), customers=config["customers"])
    settings = make_settings(
        root, config["url"], mappings_dir=world.root / "mappings", **config.get("settings", {})
    )
    ledger = Ledger(settings.ledger_url)
    ledger.create_all()
    with state_kill_point(ledger):
        return _run(config, settings, ledger, world)


def _run(config: dict[str, Any], settings: Any, ledger: Any, world: Any) -> int:
    from connector import delivery, pipeline

    from .harness import build_outboxes, open_batches

    offset = dt.timedelta(seconds=config.get("now_offset_s", 0))
    for day in config.get("days", []):
        for mapping in world.mappings:
            pipeline.prepare(mapping, day, settings, ledger)
    build_outboxes(settings, ledger, world.mappings)
    if not config.get("deliver", True):
        return 0
    for _ in range(200):
        now = dt.datetime.now(dt.UTC) + offset
        for dest in ("target", "copernica"):
            delivery.drain(settings, ledger, destination=dest, now=now)
        delivery.poll(settings, ledger, destination="target", now=now)
        if open_batches(ledger) == 0:
            return 0
        time.sleep(0.05)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
