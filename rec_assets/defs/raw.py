"""Raw titles, users and watch events: read from the configured source, validated at the door.

Titles and users are catalogue snapshots (unpartitioned). Watch events are partitioned by event week
with a single-run backfill policy: a fresh install ingests all history in one run, a new week ingests
only that week. Bad rows are quarantined into ``rejected_rows`` (or stop ingestion, by config) before
anything is written, and every write is one transaction.
"""


from datetime import datetime, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from rec_assets.asset_io import DUCKDB_POOL, RAW_GROUP
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import SourceResource, WarehouseResource
from rec_assets.quality.expectations import events_outcome_in_duckdb, run_suite, titles_expectations
from rec_assets.storage import tables

CHECK_RAW_EVENTS_REJECTED_SHARE = "raw_events_rejected_share_within_limit"
CHECK_RAW_EVENTS_EXPECTATIONS = "raw_events_meet_expectations"
CHECK_RAW_TITLES_EXPECTATIONS = "raw_titles_meet_expectations"
CHECK_RAW_TITLES_MISSING_METADATA = "raw_titles_missing_synopsis_or_image_share"

MAX_MISSING_METADATA_SHARE = 0.10


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _naive(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _rejected_preview(rejected) -> str:
    if rejected.empty:
        return "none"
    head = rejected.head(20)
    return "\n".join(f"- {r.file} line {r.line}: {r.reason}" for r in head.itertuples())


def rejected_share_check(rejected: int, rows_read: int, limit: float) -> AssetCheckResult:
    share = rejected / max(rows_read, 1)
    return AssetCheckResult(
        check_name=CHECK_RAW_EVENTS_REJECTED_SHARE,
        passed=share <= limit,
        description=(f"{rejected} of {rows_read} source event rows rejected, cascades from rejected titles included "
                     f"({share:.2%}); limit {limit:.2%} (REC_MAX_REJECTED_SHARE)"),
        metadata={"rejected_rows": rejected, "source_rows_read": rows_read, "rejected_share": share},
    )


def snapshot_result(opened, rows: int, read) -> MaterializeResult:
    """What a catalogue snapshot (titles, tags) reports: rows, source, rejected rows and the read's counts."""
    return MaterializeResult(
        metadata={
            "rows": rows,
            "source": opened.name,
            "source_fingerprint": opened.fingerprint(),
            "rejected_rows": len(read.rejected),
            "rejected_preview": MetadataValue.md(_rejected_preview(read.rejected)),
            **{f"count_{k}": int(v) for k, v in read.counts.items()},
        },
        data_version=DataVersion(opened.fingerprint()),
    )


def store_snapshot(source: SourceResource, warehouse_db: WarehouseResource, kind: str):
    """Read the source's ``kind`` ("titles" or "users") and replace its table, rejected rows recorded beside."""
    opened = source.open()
    read = getattr(opened, f"read_{kind}")(mode=source.bad_rows)
    with warehouse_db.connect() as conn:
        tables.record_rejected(conn, kind, read.rejected)
        rows = getattr(tables, f"replace_{kind}")(conn, getattr(read, kind))
    return opened, read, rows


RAW_SNAPSHOT = dict(group_name=RAW_GROUP, kinds={"duckdb", "python"}, pool=DUCKDB_POOL)


@asset(**RAW_SNAPSHOT, code_version="raw_titles-v1",
       description="The title catalogue (one row per title) from the configured source.")
def raw_titles(context: AssetExecutionContext, source: SourceResource, warehouse_db: WarehouseResource):
    opened, read, rows = store_snapshot(source, warehouse_db, "titles")
    context.log.info(f"stored {rows} titles from {opened.name}; rejected {len(read.rejected)}")
    return snapshot_result(opened, rows, read)


@asset(**RAW_SNAPSHOT, code_version="raw_users-v1",
       description="Users and their categorical features (country and what the source provides).")
def raw_users(source: SourceResource, warehouse_db: WarehouseResource):
    opened, read, rows = store_snapshot(source, warehouse_db, "users")
    return MaterializeResult(
        metadata={
            "rows": rows,
            "feature_columns": ", ".join(c for c in read.users.columns if c != "user_id") or "none",
            "rejected_rows": len(read.rejected),
            **{f"count_{k}": int(v) for k, v in read.counts.items()},
        },
        data_version=DataVersion(opened.fingerprint()),
    )


@asset(
    group_name=RAW_GROUP,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    partitions_def=SCORING_WEEKS,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[raw_titles, raw_users],
    code_version="raw_watch_events-v1",
    description="Watch events by event week (Monday keys); a backfill ingests a whole range in one run.",
    check_specs=[
        AssetCheckSpec(
            CHECK_RAW_EVENTS_REJECTED_SHARE,
            asset="raw_watch_events",
            blocking=True,
            description="Blocks the graph when more than the configured share of source event rows were rejected.",
        )
    ],
)
def raw_watch_events(context: AssetExecutionContext, source: SourceResource, warehouse_db: WarehouseResource):
    window = context.partition_time_window
    first_partition = SCORING_WEEKS.get_first_partition_window()
    # The first week also takes every earlier event, so that history before the first scoring week is in.
    start = None if window.start <= first_partition.start else _naive(window.start)
    end = _naive(window.end)
    opened = source.open()
    with warehouse_db.connect(read_only=True) as conn:
        known_titles = [r[0] for r in conn.execute("SELECT title_id FROM raw_titles").fetchall()]
        has_users = bool(conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'raw_users'"
        ).fetchone()[0])
        known_users = [r[0] for r in conn.execute("SELECT user_id FROM raw_users").fetchall()] if has_users else None
    bounds = source.timestamp_bounds(_utcnow())
    read = opened.read_events(
        start=start, end=end, known_title_ids=known_titles, known_user_ids=known_users or None,
        now=bounds.latest, earliest=bounds.earliest, mode=source.bad_rows,
    )
    with warehouse_db.connect() as conn:
        tables.record_rejected(conn, "events", read.rejected)
        deleted, inserted = tables.replace_events(conn, read.events, start, end)
        _, version = tables.events_fingerprint(conn, start or datetime(1, 1, 1), end)
    rejected_share = len(read.rejected) / max(read.rows_read, 1)
    accounting = read.accounting()
    at_span_end = window.end >= SCORING_WEEKS.get_last_partition_window().end
    held_labels = {"before_range": "before this run's weeks",
                   "after_range": "after the last complete week" if at_span_end else "after this run's weeks"}
    summary = ingestion_summary(read, deleted, held_labels)
    context.log.info(f"events {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}: {summary}")
    return MaterializeResult(
        check_results=[rejected_share_check(len(read.rejected), read.rows_read, source.max_rejected_share)],
        metadata={
            "range_start": str(start or "beginning"),
            "range_end": str(end),
            "rows_inserted": inserted,
            "rows_replaced": deleted,
            "source_rows_read": read.rows_read,
            "rejected_rows": len(read.rejected),
            "rejected_share": rejected_share,
            "rejected_preview": MetadataValue.md(_rejected_preview(read.rejected)),
            "row_accounting": MetadataValue.json(accounting),
            "row_accounting_summary": summary,
            "held_back": MetadataValue.md(
                "\n".join(f"- {h.describe(held_labels[h.where])}" for h in read.held_back) or "none"),
            "fallback_decoded_lines": read.fallback_decoded_lines,
            "timestamp_bounds": f"{bounds.earliest.isoformat()} .. {bounds.latest.isoformat()}",
            "source_fingerprint": opened.fingerprint(),
        },
        data_version=DataVersion(version),
    )


def ingestion_summary(read, replaced: int, held_labels: dict[str, str]) -> str:
    """One line that accounts for every source row: stored + quarantined (by reason) + cascaded + held back."""
    counts = read.accounting()
    reasons = ", ".join(f"{key.split(':', 1)[1]} {n}" for key, n in counts.items() if key.startswith("quarantined:"))
    held = "; ".join(h.describe(held_labels.get(h.where)) for h in read.held_back)
    return (
        f"{counts['rows_read']} source rows read = {counts['stored']} stored ({replaced} replaced)"
        f" + {counts['quarantined']} quarantined{f' ({reasons})' if reasons else ''}"
        f" + {counts['cascaded']} cascaded from rejected titles"
        f" + {counts['held_back']} held back{f' ({held})' if held else ''}"
    )


@asset_check(asset=raw_watch_events, name=CHECK_RAW_EVENTS_EXPECTATIONS, blocking=True)
def raw_events_meet_expectations(
    context: AssetCheckExecutionContext, warehouse_db: WarehouseResource, source: SourceResource
) -> AssetCheckResult:
    """The event expectations on the events the latest ingestion stored: ids present, timestamps in range, titles
    known, no duplicates. Evaluated inside DuckDB by one aggregate query, never a pandas copy of the events, so the
    check's memory does not grow with them (why not GX here: rec_assets/quality/expectations.py)."""
    latest = context.instance.get_latest_materialization_event(raw_watch_events.key)
    metadata = latest.asset_materialization.metadata if latest and latest.asset_materialization else {}
    start = metadata["range_start"].value if "range_start" in metadata else "beginning"
    end = metadata["range_end"].value if "range_end" in metadata else str(datetime(9999, 1, 1))
    bounds = source.timestamp_bounds(_utcnow())
    with warehouse_db.connect(read_only=True) as conn:
        outcome = events_outcome_in_duckdb(
            conn, "raw_watch_events",
            start=datetime(1, 1, 1) if start == "beginning" else datetime.fromisoformat(start),
            end=datetime.fromisoformat(end),
            earliest=_naive(bounds.earliest) if bounds.earliest else None, latest=_naive(bounds.latest),
        )
    return AssetCheckResult(
        passed=outcome.success,
        description=outcome.describe(),
        metadata={"rows": outcome.rows, "failed_expectations": len(outcome.failures),
                  **{f"unexpected:{f.expectation}({f.column})": f.unexpected_count for f in outcome.failures}},
    )


@asset_check(asset=raw_titles, name=CHECK_RAW_TITLES_EXPECTATIONS, blocking=True)
def raw_titles_meet_expectations(warehouse_db: WarehouseResource) -> AssetCheckResult:
    """GX suite on the catalogue: unique ids, category movie or tv, plausible release years."""
    with warehouse_db.connect(read_only=True) as conn:
        titles = conn.execute("SELECT title_id, category, release_year FROM raw_titles").df()
    outcome = run_suite("raw_titles", titles, titles_expectations(_utcnow()))
    return AssetCheckResult(passed=outcome.success, description=outcome.describe(), metadata={"rows": outcome.rows})


@asset_check(asset=raw_titles, name=CHECK_RAW_TITLES_MISSING_METADATA)
def raw_titles_missing_synopsis_or_image_share(warehouse_db: WarehouseResource) -> AssetCheckResult:
    """Reports the share of titles without a synopsis or cover art; warns above the threshold."""
    with warehouse_db.connect(read_only=True) as conn:
        total, no_synopsis, no_image = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE synopsis IS NULL OR trim(synopsis) = ''),"
            " count(*) FILTER (WHERE image IS NULL) FROM raw_titles"
        ).fetchone()
    synopsis_share = no_synopsis / max(total, 1)
    image_share = no_image / max(total, 1)
    return AssetCheckResult(
        passed=max(synopsis_share, image_share) <= MAX_MISSING_METADATA_SHARE,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{no_synopsis} of {total} titles lack a synopsis ({synopsis_share:.1%}), "
            f"{no_image} lack cover art ({image_share:.1%}); warning above {MAX_MISSING_METADATA_SHARE:.0%}"
        ),
        metadata={"titles": total, "missing_synopsis": no_synopsis, "missing_image": no_image},
    )


@asset(
    group_name=RAW_GROUP,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    deps=[raw_titles],
    code_version="raw_title_tags-v1",
    description="Every application of a tag to a title, with its time (empty when the source has no tags file).",
)
def raw_title_tags(context: AssetExecutionContext, source: SourceResource, warehouse_db: WarehouseResource):
    opened = source.open()
    with warehouse_db.connect(read_only=True) as conn:
        known_titles = [r[0] for r in conn.execute("SELECT title_id FROM raw_titles").fetchall()]
    read = opened.read_tags(mode=source.bad_rows, known_title_ids=known_titles,
                            bounds=source.timestamp_bounds(_utcnow()))
    with warehouse_db.connect() as conn:
        tables.record_rejected(conn, "tags", read.rejected)
        rows = tables.replace_title_tags(conn, read.tags)
    context.log.info(f"stored {rows} tag applications from {opened.name}; rejected {len(read.rejected)}")
    return snapshot_result(opened, rows, read)
