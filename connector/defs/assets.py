"""Asset factories: three daily-partitioned assets per source mapping, two per destination."""

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from connector import delivery, pipeline
from connector.defs.checks import (
    caps_check,
    deletions_check,
    identities_check,
    landing_check,
    reject_rate_check,
)
from connector.defs.metadata import (
    landing_rate_pct,
    markdown_table,
    report_metadata,
    stage_metadata,
)
from connector.defs.resources import ConnectorResource
from connector.ledger import destination_key
from connector.mapping import SourceMapping, SqlSource
from connector.outbox import build as outbox_build
from connector.reporting import record_run, write_report
from connector.reporting.queries import rejected_rows
from connector.settings import Settings
from connector.source_deletions import deleted_at_source

STAGES = ("source_rows", "profile_updates", "rejects", "profile_changes")
DELIVERY_GROUP = "delivery"


def mapping_key(mapping: SourceMapping | str, stage: str) -> dg.AssetKey:
    """``<mapping>/<stage>``: the asset key of one stage of a mapping."""
    name = mapping if isinstance(mapping, str) else mapping.name
    return dg.AssetKey([name, stage])


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Days from ``partition_start`` in the configured timezone (the nightly schedule's too)."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.partition_start.isoformat(), timezone=settings.timezone
    )


def _source_kind(mapping: SourceMapping) -> str:
    return str(mapping.source.kind)


def build_mapping_assets(
    mapping: SourceMapping, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """`M/source_rows` -> `M/profile_updates` (+ `M/rejects`) -> `M/profile_changes`."""
    name = mapping.name
    kinds = {_source_kind(mapping), mapping.destination}
    source_key = mapping_key(name, "source_rows")
    updates_key = mapping_key(name, "profile_updates")
    rejects_key = mapping_key(name, "rejects")
    changes_key = mapping_key(name, "profile_changes")

    @dg.asset(
        key=source_key,
        partitions_def=partitions_def,
        group_name=name,
        kinds=kinds,
        description=f"Rows of the partition day read from the {_source_kind(mapping)} source of {name}.",
    )
    def source_rows(
        context: dg.AssetExecutionContext, connector: ConnectorResource
    ) -> dg.MaterializeResult:
        result = pipeline.extract_stage(
            mapping,
            context.partition_key,
            connector.settings(),
            connector.ledger(),
            context.run.run_id,
        )
        context.log.info("%s %s: %s", name, context.partition_key, result.counts)
        return dg.MaterializeResult(metadata=stage_metadata(result))

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                updates_key,
                deps=[source_key],
                kinds=kinds,
                description="Mapped, typed, one row per identity of the day.",
            ),
            dg.AssetSpec(
                rejects_key,
                deps=[source_key],
                description="Source rows that could not become profile updates, with the reason.",
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "reject_rate",
                asset=updates_key,
                description="Rejected source rows / rows read (accepted + rejected), each row "
                "once, under the configured thresholds.",
            ),
        ],
        partitions_def=partitions_def,
        group_name=name,
        name=f"{name}__profile_updates",
    )
    def profile_updates(
        context: dg.AssetExecutionContext, connector: ConnectorResource
    ) -> Iterator[Any]:
        settings = connector.settings()
        result = pipeline.transform_stage(
            mapping, context.partition_key, settings, connector.ledger(), context.run.run_id
        )
        counts = result.counts
        yield dg.MaterializeResult(asset_key=updates_key, metadata=stage_metadata(result))
        yield dg.MaterializeResult(
            asset_key=rejects_key,
            metadata={
                "dagster/row_count": int(counts.get("rejected", 0)),
                "preview": dg.MetadataValue.md(markdown_table(result.rejects_sample)),
            },
        )
        yield reject_rate_check(
            updates_key,
            accepted=int(counts.get("rows_in", 0)),
            rejected=rejected_rows(connector.ledger(), name, context.partition_key),
            settings=settings,
        )

    @dg.asset(
        key=changes_key,
        deps=[updates_key],
        partitions_def=partitions_def,
        group_name=name,
        kinds=kinds,
        description="The day merged into the mapping's profile store at its account: the "
        "identities whose current values changed (the account's outbox sends them whole).",
        check_specs=[
            dg.AssetCheckSpec(
                "deleted_at_source",
                asset=changes_key,
                description="Identities the profile store holds that the SQL source no longer "
                "has: their profiles keep their values at the destination (the APIs cannot "
                "delete them here).",
            )
        ]
        if isinstance(mapping.source, SqlSource)
        else [],
    )
    def profile_changes(
        context: dg.AssetExecutionContext, connector: ConnectorResource
    ) -> Iterator[Any]:
        result = pipeline.profile_stage(
            mapping,
            context.partition_key,
            connector.settings(),
            connector.ledger(),
            context.run.run_id,
        )
        metadata = stage_metadata(result)
        metadata["store_version"] = int(result.stats["store_version"])
        metadata["store_identities"] = int(result.stats["store_identities"])
        metadata["clears_sample"] = dg.MetadataValue.md(
            markdown_table(result.stats["clears_sample"])
        )
        yield dg.MaterializeResult(metadata=metadata)
        deletions = deleted_at_source(mapping, connector.settings(), connector.ledger())
        if deletions is not None:
            yield deletions_check(changes_key, deletions)

    return [source_rows, profile_updates, profile_changes]


def _run_started(context: dg.AssetExecutionContext) -> dt.datetime | None:
    """When the run started, as the instance recorded it (None when it did not)."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.start_time is None:
        return None
    return dt.datetime.fromtimestamp(record.start_time, dt.UTC)


def destination_pool(settings: Settings, destination: str) -> str:
    """One Dagster pool per destination account: its drains and polls never overlap across runs."""
    account = (
        settings.target.client_code if destination == "target" else settings.copernica.database
    )
    return f"{destination}-{account}"


def build_destination_assets(
    destination: str, upstream: Sequence[dg.AssetKey], pool: str
) -> list[dg.AssetsDefinition]:
    """`D/outbox` (changed profiles, whole, as batch files), `D/submissions` (drained within
    window and quota) and `D/status_report`."""
    outbox_key = dg.AssetKey([destination, "outbox"])
    submissions_key = dg.AssetKey([destination, "submissions"])
    mappings = sorted({key.path[0] for key in upstream})
    report_key = dg.AssetKey([destination, "status_report"])

    @dg.asset(
        key=outbox_key,
        deps=list(upstream),
        group_name=DELIVERY_GROUP,
        kinds={destination, "file"},
        pool=pool,
        description=f"One row per changed profile at the {destination} account, carrying every "
        "param of every mapping that feeds it, in batch files within the caps, queued.",
        check_specs=[
            dg.AssetCheckSpec(
                "within_caps",
                asset=outbox_key,
                blocking=True,
                description="Every queued file is within the row, byte and profile caps.",
            ),
            dg.AssetCheckSpec(
                "identities_valid",
                asset=outbox_key,
                blocking=True,
                description="Every identity in the files is one the API accepts.",
            ),
        ],
    )
    def outbox(
        context: dg.AssetExecutionContext, connector: ConnectorResource
    ) -> dg.MaterializeResult:
        settings, ledger = connector.settings(), connector.ledger()
        built = outbox_build.build(settings, ledger, destination, mappings=mappings)
        context.log.info("%s outbox: %s", destination, built.summary())
        acct = outbox_build.account(settings, ledger, destination, mappings=mappings)
        identity_type = acct.identity_type if acct is not None else ""
        files = [
            {
                "batch": b.batch_key,
                "rows": b.row_count,
                "bytes": b.byte_size,
                "sha256": b.sha256[:12],
            }
            for b in built.batches
        ]
        preview = outbox_build.preview(built.batches, cache_dir=settings.cache_dir)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": built.rows,
                "changed_profiles": built.candidates,
                "already_sent": built.unchanged,
                "batches": len(built.batches),
                # the ledger ids of the batches written: a sync counts what became of its own
                "batch_ids": dg.MetadataValue.json([b.id for b in built.batches]),
                "mappings": ", ".join(built.mappings),
                "params": ", ".join(built.param_names),
                "files": dg.MetadataValue.md(markdown_table(files)),
                "preview": dg.MetadataValue.md(markdown_table(preview)),
                "summary": built.summary(),
            },
            check_results=[
                caps_check(built.batches, settings, destination),
                identities_check(built.batches, destination, identity_type, settings.cache_dir),
            ],
        )

    @dg.asset(
        key=submissions_key,
        deps=[outbox_key],
        group_name=DELIVERY_GROUP,
        kinds={destination},
        pool=pool,
        description=f"Queued batches submitted to {destination}, oldest first, inside the off-peak "
        "window and the daily quota; the rest stays queued with a projected date.",
    )
    def submissions(
        context: dg.AssetExecutionContext, connector: ConnectorResource
    ) -> dg.MaterializeResult:
        settings, ledger = connector.settings(), connector.ledger()
        result = delivery.drain(
            settings, ledger, destination=destination, force=connector.force_window
        )
        context.log.info("%s drain: %s", destination, result.summary())
        return dg.MaterializeResult(metadata={**result.metadata(), "summary": result.summary()})

    @dg.asset(
        key=report_key,
        deps=[submissions_key],
        group_name=DELIVERY_GROUP,
        kinds={destination, "html"},
        pool=pool,
        description=f"Statuses of open {destination} batches polled to the end, outcomes recorded, "
        "failures re-queued; the run recorded and the report written (HTML and CSV): this "
        "page shows the run's figures, mapping by mapping, and links to the report.",
        check_specs=[
            dg.AssetCheckSpec(
                "landing_rate",
                asset=report_key,
                description="Read-back of a sample of delivered profiles matches the source.",
            ),
        ],
    )
    def status_report(
        context: dg.AssetExecutionContext, connector: ConnectorResource
    ) -> dg.MaterializeResult:
        settings, ledger = connector.settings(), connector.ledger()
        polled = delivery.poll(
            settings,
            ledger,
            destination=destination,
            wait=connector.poll_timeout_s > 0,
            timeout_s=connector.poll_timeout_s or None,
        )
        context.log.info("%s poll: %s", destination, polled.summary())
        run = record_run(
            ledger,
            destination=destination,
            destination_key=destination_key(destination, settings),
            mappings=mappings,
            run_id=context.run.run_id,
            started_at=_run_started(context),
        )
        report = write_report(
            ledger,
            destination,
            settings.reports,
            settings.daily_quota,
            mappings,
            dagster_url=settings.dagster_url,
            work_dir=settings.work_dir,
        )
        context.log.info("%s report: %s", destination, report.html_path)
        poll = {
            key: value
            for key, value in polled.metadata().items()
            if not key.startswith(("rows_", "landing_rate"))  # the run's figures say it once
        }
        return dg.MaterializeResult(
            metadata={
                **landing_rate_pct(polled.landing_rate),
                **report_metadata(report, run, settings.dagster_url),
                **poll,
                "summary": polled.summary(),
            },
            check_results=[landing_check(polled.landing_rate, polled.verified)],
        )

    return [outbox, submissions, status_report]
