"""Asset factories: three daily-partitioned assets per source mapping, two per destination."""

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from connector.defs import steps
from connector.defs.checks import (
    caps_result,
    deletions_check,
    identities_result,
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
from connector.mapping import SourceMapping, SqlSource
from connector.settings import Settings

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
        ctx = _step_context(context, connector, partition=context.partition_key)
        result = connector.step(context, lambda: steps.source_rows(ctx, mapping)).result
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
        ctx = _step_context(context, connector, partition=context.partition_key)
        out = connector.step(context, lambda: steps.profile_updates(ctx, mapping))
        result, counts = out.result, out.result.counts
        yield dg.MaterializeResult(asset_key=updates_key, metadata=stage_metadata(result))
        yield dg.MaterializeResult(
            asset_key=rejects_key,
            metadata={
                "dagster/row_count": int(counts.get("rejected", 0)),
                "preview": dg.MetadataValue.md(markdown_table(result.rejects_sample)),
            },
        )
        yield reject_rate_check(
            updates_key, accepted=out.accepted, rejected=out.rejected, settings=ctx.settings
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
        ctx = _step_context(context, connector, partition=context.partition_key)
        out = connector.step(context, lambda: steps.profile_changes(ctx, mapping))
        result = out.result
        metadata = stage_metadata(result)
        metadata["store_version"] = int(result.stats["store_version"])
        metadata["store_identities"] = int(result.stats["store_identities"])
        metadata["clears_sample"] = dg.MetadataValue.md(
            markdown_table(result.stats["clears_sample"])
        )
        yield dg.MaterializeResult(metadata=metadata)
        if out.deletions is not None:
            yield deletions_check(changes_key, out.deletions)

    return [source_rows, profile_updates, profile_changes]


def _step_context(
    context: dg.AssetExecutionContext,
    connector: ConnectorResource,
    *,
    partition: str = "",
    started_at: dt.datetime | None = None,
) -> steps.StepContext:
    """The step's context of this asset's run (``partition``: a mapping asset's day)."""
    return steps.StepContext(
        settings=connector.settings(),
        ledger=connector.ledger(),
        run_id=context.run.run_id,
        partition=partition,
        force_window=connector.force_window,
        poll_timeout_s=connector.poll_timeout_s,
        started_at=started_at,
    )


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
        ctx = _step_context(context, connector)
        out = connector.step(context, lambda: steps.outbox(ctx, destination, mappings))
        context.log.info("%s outbox: %s", destination, out.summary)
        return dg.MaterializeResult(
            metadata={
                **out.figures(),
                "batch_ids": dg.MetadataValue.json(out.batch_ids),
                "files": dg.MetadataValue.md(markdown_table(out.files)),
                "preview": dg.MetadataValue.md(markdown_table(out.preview)),
            },
            check_results=[caps_result(out.caps), identities_result(out.identities)],
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
        ctx = _step_context(context, connector)
        out = connector.step(context, lambda: steps.submissions(ctx, destination))
        context.log.info("%s drain: %s", destination, out.drain.summary())
        return dg.MaterializeResult(metadata=out.figures())

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
        ctx = _step_context(context, connector, started_at=_run_started(context))
        out = connector.step(context, lambda: steps.status_report(ctx, destination, mappings))
        polled, run, report = out.polled, out.run, out.report
        context.log.info("%s poll: %s", destination, polled.summary())
        context.log.info("%s report: %s", destination, report.html_path)
        poll = {
            key: value
            for key, value in polled.metadata().items()
            if not key.startswith(("rows_", "landing_rate"))  # the run's figures say it once
        }
        return dg.MaterializeResult(
            metadata={
                **landing_rate_pct(polled.landing_rate),
                **report_metadata(report, run, ctx.settings.dagster_url),
                **poll,
                "summary": polled.summary(),
            },
            check_results=[landing_check(polled.landing_rate, polled.verified)],
        )

    return [outbox, submissions, status_report]
