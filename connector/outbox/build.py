"""The account's outbox: changed profiles, whole, as batch files.

A destination account's profile is the union of the params of every mapping that feeds the
account (their profile stores, ``connector.profiles.store``), each with its latest known
value. :func:`build` takes the identities whose values changed in any store since the last
build, joins every store's current values into one full row per profile, leaves out the rows
that would tell the destination nothing new (the same digest as the latest row queued or on
its way for the profile, or, with none on its way, as the last one confirmed), and writes the
rest as batch files within the caps.

Every row carries the whole managed attribute set, so Target v2's rule that consecutive
batches for the same thirdPartyIds override each other loses nothing: whichever row the
service applies last holds everything. Changes of several mappings for one identity in one
cycle go out as one row. :func:`current_rows` gives re-queues the same full rows, so a retry
sends the profile's current state, never a stale copy of the failed row.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow as pa

from connector import ledger as ledger_mod
from connector import progress
from connector.columns import DIGEST, IDENTITY, SOURCE_REF
from connector.digests import digest_sql
from connector.encoding import quote_ident, quote_literal
from connector.ledger import Batch, Ledger
from connector.mapping import account_conflicts
from connector.outbox import manifests
from connector.outbox.writer import safe_name, write_batches
from connector.profiles import dedupe
from connector.profiles import store as profile_store
from connector.profiles.merge import PARTITION, VERSION
from connector.profiles.store import StoreRef
from connector.settings import Settings
from connector.storage import ObjectMissing, fetch

log = logging.getLogger(__name__)

LABEL_MAX = 120  # Batch.mapping's width
READ_ROWS = 25_000
# up to this many changed profiles, a build looks their confirmed digests up in the ledger
# (and keeps the changed rows in DuckDB); beyond it, it exports every digest of the account
# in one stream, cheaper per row (docs/ledger.md: the nightly case)
LOOKUP_MAX = 500_000


class OutboxError(ValueError):
    """The account's mappings do not describe one profile (a param owned twice, mixed ids)."""


@dataclass(frozen=True)
class Account:
    """The profile at one destination account: its stores, params in order, identity type."""

    destination: str
    key: str
    stores: tuple[StoreRef, ...]
    param_names: tuple[str, ...]
    identity_type: str

    @property
    def label(self) -> str:
        """What the account's batches name as their origin (``Batch.mapping``)."""
        label = "+".join(s.mapping for s in self.stores)
        return label if len(label) <= LABEL_MAX else self.key

    def stand_in(self) -> Any:
        """The mapping-like object ``write_batches`` takes: the account's whole profile."""
        return SimpleNamespace(
            name=self.label,
            destination=self.destination,
            identity=SimpleNamespace(type=self.identity_type),
            param_names=list(self.param_names),
        )


def account(
    settings: Settings, ledger: Ledger, destination: str, *, mappings: Collection[str] | None = None
) -> Account | None:
    """The account ``destination`` names in ``settings``, from the stores its mappings fed
    (only ``mappings``, when given: the mappings configured today). None: no store yet."""
    key = ledger_mod.destination_key(destination, settings)
    refs = tuple(
        r
        for r in profile_store.stores(ledger, key, cache_dir=settings.profiles_cache)
        if mappings is None or r.mapping in mappings
    )
    if not refs:
        return None
    # the rule `connector mappings validate` applies to the files, applied to the stores
    conflicts = account_conflicts(
        [
            (
                f"store {ref.mapping}",
                SimpleNamespace(
                    name=ref.mapping,
                    destination=destination,
                    identity=SimpleNamespace(type=ref.identity_type),
                    param_names=list(ref.param_names),
                ),
            )
            for ref in refs
        ]
    )
    if conflicts:
        raise OutboxError(f"{key}: " + "; ".join(str(c) for c in conflicts))
    names = tuple(name for ref in refs for name in ref.param_names)
    return Account(destination, key, refs, names, refs[0].identity_type)


def _alias(i: int) -> str:
    return f"s{i}"


def changed_since_built(acct: Account) -> str:
    """A predicate over :func:`full_rows_sql`'s stores: a store changed the profile since
    the outbox last took its changes."""
    return " OR ".join(
        f"{_alias(i)}.{VERSION} > {int(s.built_version)}" for i, s in enumerate(acct.stores)
    )


def identity_of(acct: Account) -> str:
    """The profile's identity in :func:`full_rows_sql`'s join: the first store holding it."""
    ids = [f"{_alias(i)}.{IDENTITY}" for i in range(len(acct.stores))]
    return ids[0] if len(ids) == 1 else f"coalesce({', '.join(ids)})"


def full_rows_sql(acct: Account, where: str) -> str:
    """One full row per profile the predicate ``where`` (over the stores ``s0``, ``s1``, ...)
    selects: ``_identity``, ``_source_ref`` (each store's, named), ``_partition`` (the newest
    day among them), ``_digest``, then every param of the account, null where no store holds
    a value.

    The stores are joined on identity (FULL OUTER: a profile may be in any of them), so a
    store is scanned once and no list of candidates is built; with one store it is a scan.
    """
    qi = quote_ident
    sources, refs, days, params = [], [], [], []
    for i, ref in enumerate(acct.stores):
        alias = _alias(i)
        cols = ", ".join(
            [IDENTITY, SOURCE_REF, PARTITION, VERSION, *(qi(n) for n in ref.param_names)]
        )
        store = f"(SELECT {cols} FROM read_parquet({quote_literal(str(ref.path))})) {alias}"
        if i == 0:
            sources.append(store)
        else:
            earlier = ", ".join(f"{_alias(j)}.{IDENTITY}" for j in range(i))
            on = f"coalesce({earlier})" if i > 1 else f"{_alias(0)}.{IDENTITY}"
            sources.append(f"FULL OUTER JOIN {store} ON {alias}.{IDENTITY} = {on}")
        refs.append(
            f"CASE WHEN {alias}.{IDENTITY} IS NOT NULL "
            f"THEN {quote_literal(ref.mapping + '=')} || {alias}.{SOURCE_REF} END"
        )
        days.append(f"{alias}.{PARTITION}")
        params += [f"{alias}.{qi(n)} AS {qi(n)}" for n in ref.param_names]
    newest = days[0] if len(days) == 1 else f"greatest({', '.join(days)})"
    rows = (
        f"SELECT {identity_of(acct)} AS {IDENTITY}, concat_ws('; ', {', '.join(refs)}) "
        f"AS {SOURCE_REF}, {newest} AS {PARTITION}, {', '.join(params)} "
        f"FROM {' '.join(sources)} WHERE {where}"
    )
    names = ", ".join(qi(n) for n in acct.param_names)
    return (
        f"SELECT {IDENTITY}, {SOURCE_REF}, {PARTITION}, {digest_sql(acct.param_names, 'r')} "
        f"AS {DIGEST}, {names} FROM ({rows}) r"
    )


@contextmanager
def _duck(work: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = dedupe.connect(work)
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


def _work_dir(settings: Settings, key: str) -> Path:
    return Path(settings.stage_dir) / "_outbox" / safe_name(key) / uuid.uuid4().hex[:12]


def _last_sent_sql(
    con: duckdb.DuckDBPyConnection,
    ledger: Ledger,
    key: str,
    work: Path,
    identities: pa.Array | None = None,
) -> str:
    """A relation ``(_identity, digest)``: per profile, the digest of the latest row queued or
    on its way, or, with none, of the last row confirmed; of ``identities`` only, when given
    (the others' confirmed digests are not read)."""
    delivered = work / "delivered.parquet"
    ledger_mod.export_delivered(ledger, key, delivered, identities=identities)
    flights = _local_manifests(ledger_mod.in_flight_manifests(ledger, key), work / "in_flight")
    confirmed = (
        f"SELECT identity AS {IDENTITY}, digest FROM read_parquet({quote_literal(str(delivered))})"
    )
    if not flights:
        return f"({confirmed})"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE flight_files AS SELECT * FROM (VALUES "
        + ", ".join(f"({int(i)}, {quote_literal(str(p))})" for i, p in flights)
        + ") v(batch_id, path)"
    )
    # the same strings as above: read_parquet's filename column is the path as given
    files = "[" + ", ".join(quote_literal(str(p)) for _, p in flights) + "]"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE in_flight AS
            SELECT m.{IDENTITY}, arg_max(m.{DIGEST}, f.batch_id) AS digest
            FROM read_parquet({files}, filename = true, union_by_name = true) m
            JOIN flight_files f ON f.path = m.filename
            GROUP BY m.{IDENTITY}"""
    )
    return (
        f"(SELECT {IDENTITY}, digest FROM in_flight UNION ALL "
        f"SELECT d.* FROM ({confirmed}) d ANTI JOIN in_flight f ON f.{IDENTITY} = d.{IDENTITY})"
    )


def _local_manifests(
    in_flight: Sequence[tuple[int, str, str]], folder: Path
) -> list[tuple[int, Path]]:
    """``(batch id, local manifest)`` of in-flight batches: a local outbox's files as they
    are, an object store's copied under ``folder`` (the build's work folder, removed with
    it). A manifest that is not there is left out, as its batch's rows cannot be known."""
    found: list[tuple[int, Path]] = []
    for batch_id, _state, url in in_flight:
        try:
            found.append((batch_id, fetch(url, folder / str(batch_id))))
        except ObjectMissing:
            log.warning("batch %s: manifest %s not in the outbox; left out", batch_id, url)
    return found


@dataclass
class BuildResult:
    """What one build of an account's outbox did."""

    destination_key: str
    mappings: list[str] = field(default_factory=list)
    param_names: list[str] = field(default_factory=list)
    candidates: int = 0  # identities changed in a store since the last build
    unchanged: int = 0  # their whole row is the one last sent or confirmed
    rows: int = 0  # rows written into batches
    added: int = 0  # of those, the profile's first row (none queued, on its way or confirmed)
    batches: list[Batch] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.destination_key}: {self.candidates} changed profile(s) of "
            f"{'+'.join(self.mappings) or 'no mapping'}, {self.unchanged} already sent, "
            f"{self.rows} row(s) in {len(self.batches)} batch(es)"
        )


def build(
    settings: Settings,
    ledger: Ledger,
    destination: str,
    *,
    mappings: Collection[str] | None = None,
) -> BuildResult:
    """Write the account's changed profiles, whole, as queued batches (see the module doc).

    Crash-safe and repeatable: the stores' ``built_version`` moves only after the batches
    are registered, and a build that repeats finds its rows already queued (same digest).
    One build of an account at a time (``Ledger.exclusive``): a build that starts while
    another runs waits for it, then finds its rows queued, so two syncs at once do not
    queue the same profiles twice.
    Reported as the ``outbox`` stage (``connector.progress``): rows and batches written.
    """
    key = ledger_mod.destination_key(destination, settings)
    with ledger.exclusive(f"outbox:{key}"), progress.stage("outbox", key, batches=0) as report:
        result = _build(settings, ledger, destination, key, mappings, report)
        report.conclude(result.summary().removeprefix(f"{key}: "))
    return result


def _build(
    settings: Settings,
    ledger: Ledger,
    destination: str,
    key: str,
    mappings: Collection[str] | None,
    report: progress.Stage,
) -> BuildResult:
    acct = account(settings, ledger, destination, mappings=mappings)
    result = BuildResult(destination_key=key)
    if acct is None:
        return result
    result.mappings = [s.mapping for s in acct.stores]
    result.param_names = list(acct.param_names)
    work = _work_dir(settings, key)
    with _duck(work) as con:
        changed = full_rows_sql(acct, changed_since_built(acct))
        ((result.candidates, newest),) = con.execute(
            f"SELECT count(*), max({PARTITION})::VARCHAR FROM ({changed})"
        ).fetchall()
        # an upper bound: the rows already sent are left out as they stream
        report.update(total=int(result.candidates))
        if result.candidates:
            identities = None
            if result.candidates <= LOOKUP_MAX:  # a night's changes: few among many
                con.execute(f"CREATE TEMP TABLE changed_rows AS {changed}")
                changed = "SELECT * FROM changed_rows"
                ids = con.sql(f"SELECT {IDENTITY} FROM changed_rows").to_arrow_table()
                identities = ids.column(0).combine_chunks()
            last_sent = _last_sent_sql(con, ledger, key, work, identities)
            # streamed from the query into the batch files: the rows are not written twice
            reader = con.sql(
                f"""SELECT r.* EXCLUDE ({PARTITION}) FROM ({changed}) r
                    LEFT JOIN {last_sent} l ON l.{IDENTITY} = r.{IDENTITY}
                    WHERE l.digest IS DISTINCT FROM r.{DIGEST}"""
            ).to_arrow_reader(READ_ROWS)
            try:
                result.batches = write_rows(
                    settings, ledger, acct, reader, partition=newest, report=report
                )
            finally:
                reader.close()
            result.rows = sum(b.row_count for b in result.batches)
            result.unchanged = int(result.candidates) - result.rows
            result.added = _first_rows(con, result.batches, last_sent, work / "new")
    profile_store.mark_built(ledger, {s.mapping: (key, s.version) for s in acct.stores})
    if result.candidates:
        ledger_mod.record_outbox_build(
            ledger,
            key,
            changed=int(result.candidates),
            already_sent=result.unchanged,
            added=result.added,
            rows=result.rows,
        )
    log.info("outbox %s", result.summary())
    return result


def _first_rows(
    con: duckdb.DuckDBPyConnection, batches: Sequence[Batch], last_sent: str, folder: Path
) -> int:
    """Rows of ``batches`` whose profile had no row before them (``last_sent`` was read
    before they were written): the profile's first at the account. Reads the identities of
    the new manifests only (copies under ``folder`` when in a store), not the stores again."""
    if not batches:
        return 0
    local = [fetch(str(b.manifest_path), folder / str(b.id)) for b in batches]
    files = "[" + ", ".join(quote_literal(str(p)) for p in local) + "]"
    ((added,),) = con.execute(
        f"SELECT count(*) FROM read_parquet({files}) m "
        f"ANTI JOIN {last_sent} l ON l.{IDENTITY} = m.{IDENTITY}"
    ).fetchall()
    return int(added)


def current_rows(
    settings: Settings, ledger: Ledger, destination: str, identities: Sequence[str]
) -> tuple[Account, pa.Table]:
    """The profiles' full rows as they stand now (as :func:`build` writes them), for a
    re-queue: ``_identity``, ``_source_ref``, ``_digest``, the account's params."""
    acct = account(settings, ledger, destination)
    if acct is None:
        raise OutboxError(f"{destination}: no profile store to re-send from")
    with _duck(_work_dir(settings, acct.key)) as con:
        ids = pa.table({IDENTITY: pa.array(list(identities), pa.string())})
        con.register("wanted", ids)
        wanted = f"{identity_of(acct)} IN (SELECT {IDENTITY} FROM wanted)"
        table = con.sql(
            f"SELECT * EXCLUDE ({PARTITION}) FROM ({full_rows_sql(acct, wanted)}) "
            f"ORDER BY {IDENTITY}"
        ).to_arrow_table()
    return acct, table


def write_rows(
    settings: Settings,
    ledger: Ledger,
    acct: Account,
    rows: pa.Table | pa.RecordBatchReader,
    *,
    partition: str,
    attempt: int = 1,
    parent_id: int | None = None,
    report: progress.Stage | None = None,
) -> list[Batch]:
    """Write full rows (``_identity``, ``_source_ref``, ``_digest``, the account's params) as
    queued batches of ``attempt`` (``report``: the stage told the rows and batches)."""
    return write_batches(
        rows,
        mapping=acct.stand_in(),
        partition=partition,
        settings=settings,
        ledger=ledger,
        attempt=attempt,
        parent_id=parent_id,
        report=report,
    )


def preview(
    batches: Sequence[Batch], n: int = 10, cache_dir: Path | None = None
) -> list[dict[str, Any]]:
    """The first rows of the first batch with their values (decoded from the file, as sent)."""
    if not batches:
        return []
    rows = manifests.read(batches[0].manifest_path, cache_dir).slice(0, n)
    return manifests.drop_bookkeeping(manifests.with_values(batches[0].path, rows)).to_pylist()
