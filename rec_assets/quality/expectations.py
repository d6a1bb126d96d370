"""Great Expectations suites for raw events, titles and the split, run in an ephemeral GX context.

GX 1.x has no Dagster integration (dagster-ge supports 0.x only), so each suite runs in a throw-away
in-memory context inside a Dagster asset check; the outcome lists every failed expectation with how
many rows broke it, which the check shows as its failure reason.

The event expectations are the exception: the events are evaluated where they are, in DuckDB
(``dbt_like_sql/analyses/raw_events_expectations.sql``, one aggregate query, values bound as parameters), by
:func:`events_outcome_in_duckdb`, which reports the same :class:`SuiteOutcome`. GX against a SQL datasource
on the DuckDB file was tried and does not work with this stack (GX 1.24, duckdb-engine 0.17, SQLAlchemy 2.1,
DuckDB 2.0): GX's SQL engine fetches a metric's rows after handing its connection back to the pool, and
duckdb-engine's cursor loses them then, so every metric resolves to nothing (``IndexError`` in
``resolve_metric_bundle``). A pandas copy of every event (what ran here before) grows with the events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"

for _name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    unexpected_count: int | None
    element_count: int | None

    def describe(self) -> str:
        where = f"({self.column})" if self.column else ""
        if self.unexpected_count is None:
            return f"{self.expectation}{where} failed"
        return f"{self.expectation}{where}: {self.unexpected_count} of {self.element_count} rows"


@dataclass
class SuiteOutcome:
    suite: str
    rows: int
    evaluated: int
    failures: list[FailedExpectation] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations met on {self.rows} rows"
        return f"{self.suite}: " + "; ".join(f.describe() for f in self.failures)


def run_suite(name: str, frame: pd.DataFrame, expectations: list) -> SuiteOutcome:
    """Validate ``frame`` against ``expectations`` in an ephemeral GX context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = gx.ExpectationSuite(name=name)
    for expectation in expectations:
        suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = [
        FailedExpectation(
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column")
            or ",".join(r.expectation_config.kwargs.get("column_list", []) or []) or None,
            unexpected_count=(r.result or {}).get("unexpected_count"),
            element_count=(r.result or {}).get("element_count", len(frame)),
        )
        for r in result.results
        if not r.success
    ]
    return SuiteOutcome(suite=name, rows=len(frame), evaluated=len(result.results), failures=failures)


def epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of a naive-UTC or aware timestamp."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1_000_000)


def events_expectations(known_title_ids: list[int], earliest: datetime | None, latest: datetime) -> list:
    """Expectations on a frame ``user_id, title_id, ts`` where ``ts`` is integer microseconds since the epoch:
    GX checks a datetime column's range one Python call per row, an integer column in one vectorised pass.

    The GX form of the rules, for a frame that fits in memory; the asset check evaluates the same rules on the
    stored events in DuckDB (:func:`events_outcome_in_duckdb`)."""
    import great_expectations.expectations as gxe

    ts_bounds = {"max_value": epoch_us(latest)}
    if earliest:
        ts_bounds["min_value"] = epoch_us(earliest)
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="user_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="title_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="ts"),
        gxe.ExpectColumnValuesToBeBetween(column="ts", **ts_bounds),
        gxe.ExpectColumnValuesToBeInSet(column="title_id", value_set=list(known_title_ids)),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "title_id", "ts"]),
    ]


# The event expectations, in the order of ``events_expectations``: (GX expectation type, column(s), the column of
# ``raw_events_expectations.sql`` that counts the rows breaking it).
EVENT_EXPECTATIONS: tuple[tuple[str, str, str], ...] = (
    ("expect_column_values_to_not_be_null", "user_id", "null_user_id"),
    ("expect_column_values_to_not_be_null", "title_id", "null_title_id"),
    ("expect_column_values_to_not_be_null", "ts", "null_ts"),
    ("expect_column_values_to_be_between", "ts", "ts_out_of_bounds"),
    ("expect_column_values_to_be_in_set", "title_id", "unknown_title_id"),
    ("expect_compound_columns_to_be_unique", "user_id,title_id,ts", "duplicate_rows"),
)


EVENTS_CHECK_MEMORY_LIMIT = "256MB"


def events_outcome_in_duckdb(conn, name: str, start: datetime, end: datetime, earliest: datetime | None,
                             latest: datetime) -> SuiteOutcome:
    """The event expectations on the stored events with ``start <= ts < end``, evaluated inside DuckDB: one
    aggregate query (``analyses/raw_events_expectations.sql``), titles known by an anti-join on ``raw_titles``.
    Memory does not depend on the number of events: no event leaves the database. Timestamps are naive UTC."""
    from rec_assets.sqlmodels.runner import ANALYSES_DIR, discover_queries, query

    analysis = discover_queries(SQL_DIR, ANALYSES_DIR)["raw_events_expectations"]
    values = {"range_start": start, "range_end": end, "earliest": earliest, "latest": latest}
    # DuckDB's own memory is bounded too: the duplicate count's GROUP BY over every triple spills to disk past the
    # limit instead of growing with the events (10.2 M events: 1.04 GiB peak unlimited, 0.41 GiB at 256 MB, 2.5 s).
    previous = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    conn.execute("SET memory_limit = $limit", {"limit": EVENTS_CHECK_MEMORY_LIMIT})
    try:
        row = query(conn, analysis, values).fetchone()
    finally:
        conn.execute("SET memory_limit = $limit", {"limit": previous})
    counts = dict(zip(("element_count", *(column for *_, column in EVENT_EXPECTATIONS)), (int(v) for v in row)))
    rows = counts["element_count"]
    failures = [
        FailedExpectation(expectation=expectation, column=column, unexpected_count=counts[key], element_count=rows)
        for expectation, column, key in EVENT_EXPECTATIONS
        if counts[key]
    ]
    return SuiteOutcome(suite=name, rows=rows, evaluated=len(EVENT_EXPECTATIONS), failures=failures)


def titles_expectations(now: datetime) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="title_id"),
        gxe.ExpectColumnValuesToBeUnique(column="title_id"),
        gxe.ExpectColumnValuesToBeInSet(column="category", value_set=["movie", "tv"]),
        gxe.ExpectColumnValuesToBeBetween(column="release_year", min_value=1880, max_value=now.year + 2),
    ]


def split_windows_expectations() -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToEqual(value=4),
        gxe.ExpectColumnValuesToBeInSet(column="window_name", value_set=["X", "Y", "X_prime", "Y_prime"]),
        gxe.ExpectColumnValuesToBeBetween(column="events", min_value=1),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="window_end", column_B="window_start"),
    ]
