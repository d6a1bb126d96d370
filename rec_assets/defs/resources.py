"""Typed resources: every setting a user may change, each bound to an environment variable.

Each field's default is the value used when its environment variable is unset, so a fresh
clone runs with no configuration; ``build_resources()`` binds a field to ``EnvVar`` only when
the variable is set, which keeps the UI honest about where a value came from.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from rec_assets.sources.canonical import CanonicalSource
from rec_assets.storage import DUCKDB_STORE, TableStore, is_duckdb_store
from rec_assets.sources.movielens import MovieLensSource
from rec_assets.sources.simulator import config_for, ensure_generated, simulator_span
from rec_assets.sources.validation import DEFAULT_EARLIEST_EVENT, DEFAULT_FUTURE_SLACK_DAYS, TimestampBounds

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOME = PROJECT_ROOT / ".rec_home"


def rec_home() -> Path:
    """Where the DuckDB file, artifacts and the Dagster instance live (``REC_HOME``)."""
    return Path(os.environ.get("REC_HOME") or DEFAULT_HOME).resolve()


SOURCE_KINDS = ("simulator", "movielens", "canonical")
BAD_ROW_MODES = ("quarantine", "fail")


class SourceResource(ConfigurableResource):
    """Where raw titles, users and watch events come from, and what to do with bad rows."""

    kind: str = Field(
        default="simulator", description="REC_DATA_SOURCE: simulator (embedded, default), movielens or canonical."
    )
    data_dir: str = Field(default="", description="REC_DATA_DIR: the directory of a movielens or canonical source.")
    simulator_preset: str = Field(default="default", description="REC_SIM_PRESET: tiny, default or large.")
    simulator_seed: int = Field(default=0, description="REC_SIM_SEED: the simulator's seed.")
    home: str = Field(default="", description="REC_HOME: where generated sources are cached.")
    bad_rows: str = Field(
        default="quarantine", description="REC_BAD_ROWS: quarantine bad rows into rejected_rows, or fail."
    )
    max_rejected_share: float = Field(
        default=0.01,
        description="REC_MAX_REJECTED_SHARE: above this share of rejected events (bad rows and cascades from rejected "
                    "titles), a blocking check fails.",
    )
    earliest_event: str = Field(
        default=DEFAULT_EARLIEST_EVENT,
        description="REC_EARLIEST_EVENT: events and tags before this day (YYYY-MM-DD, UTC) are quarantined as "
                    "implausible_timestamp.",
    )
    future_slack_days: int = Field(
        default=DEFAULT_FUTURE_SLACK_DAYS,
        description="REC_FUTURE_SLACK_DAYS: events and tags later than the run's clock plus this many days are "
                    "quarantined as future.",
    )

    def timestamp_bounds(self, now: datetime | None = None) -> TimestampBounds:
        """The plausible range of timestamps for a run whose clock reads ``now`` (default: the current time)."""
        return TimestampBounds.for_run(now or datetime.now(timezone.utc), self.earliest_event, self.future_slack_days)

    def home_path(self) -> Path:
        return Path(self.home).resolve() if self.home else rec_home()

    def open(self):
        """The source object (pure code) this configuration names; generates the simulator's data once."""
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"REC_DATA_SOURCE={self.kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        if self.bad_rows not in BAD_ROW_MODES:
            raise ValueError(f"REC_BAD_ROWS={self.bad_rows!r} is not one of {', '.join(BAD_ROW_MODES)}")
        if self.kind == "simulator":
            config = config_for(self.simulator_preset, self.simulator_seed)
            source = CanonicalSource(ensure_generated(config, self.home_path() / "sources"))
            source.name = f"simulator:{config.preset}"
            return source
        if not self.data_dir:
            raise ValueError(f"REC_DATA_SOURCE={self.kind} needs REC_DATA_DIR, the directory holding its files")
        if self.kind == "movielens":
            return MovieLensSource(Path(self.data_dir))
        return CanonicalSource(Path(self.data_dir))

    def event_span(self) -> tuple[date, date]:
        """First event day and last event day (exclusive), without generating simulated data."""
        if self.kind == "simulator":
            return simulator_span(config_for(self.simulator_preset, self.simulator_seed))
        return self.open().event_span(self.timestamp_bounds())


class WindowsResource(ConfigurableResource):
    """Lengths of the four time windows of a scoring week (DESIGN.md), in days."""

    history_days: int = Field(default=730, description="REC_HISTORY_DAYS: X and X' (2 years by default).")
    label_days: int = Field(default=14, description="REC_LABEL_DAYS: Y, the training labels before the scoring week.")
    recent_popularity_days: int = Field(default=60, description="REC_RECENT_POPULARITY_DAYS: short popularity window.")
    first_scoring_week: str = Field(
        default="", description="REC_FIRST_WEEK: first scoring week (a Monday); default: the source's first week."
    )
    min_labelled_users: int = Field(
        default=20,
        description="REC_MIN_LABELLED_USERS: a week is trained and evaluated only when at least this many users "
                    "have an event in Y and at least this many in Y'.",
    )


class WarehouseResource(ConfigurableResource):
    """The tables. By default the DuckDB file, one writer at a time: connections wait for the lock instead of
    failing. With ``REC_TABLE_STORE`` a path or ``s3://`` URI, Parquet files per partition there, read through
    DuckDB views, so several workers share them with no lock (``rec_assets.storage``)."""

    database: str = Field(default="", description="REC_DUCKDB: the DuckDB file (default REC_HOME/warehouse.duckdb).")
    lock_timeout_s: float = Field(default=900.0, description="How long a connection waits for another writer.")
    table_store: str = Field(
        default="",
        description="REC_TABLE_STORE: 'duckdb' (the DuckDB file, default), or a shared path or s3://bucket/prefix "
                    "holding every table as Parquet files per partition. Empty: REC_TABLE_STORE, else duckdb.",
    )

    def store_setting(self) -> str:
        """The field; else the DuckDB file when one is named explicitly; else REC_TABLE_STORE; else duckdb."""
        if self.table_store:
            return self.table_store
        if self.database:
            return DUCKDB_STORE
        return os.environ.get("REC_TABLE_STORE") or DUCKDB_STORE

    def parquet_store(self) -> TableStore | None:
        """The Parquet table store, or None when the tables live in the DuckDB file."""
        setting = self.store_setting()
        return None if is_duckdb_store(setting) else TableStore.from_setting(setting)

    def location(self) -> str:
        """Where the tables live: the DuckDB file's path, or the table store's path or URI."""
        store = self.parquet_store()
        return str(self.path()) if store is None else store.location

    def path(self) -> Path:
        return Path(self.database).resolve() if self.database else rec_home() / "warehouse.duckdb"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file's lock (backfills run in parallel).
        On a Parquet table store: an in-memory connection with a view per table (no lock to wait for)."""
        store = self.parquet_store()
        if store is not None:
            with store.connect() as conn:
                yield conn
            return
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():
            read_only = False  # a read-only connection cannot create the file
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 1.5, 2.0)
        try:
            yield conn
        finally:
            conn.close()


class ArtifactsResource(ConfigurableResource):
    """Files that are not tables: feature arrays, checkpoints, figures, caches."""

    root: str = Field(default="", description="REC_ARTIFACTS: default REC_HOME/artifacts.")

    def path(self, *parts: str) -> Path:
        base = Path(self.root).resolve() if self.root else rec_home() / "artifacts"
        return base.joinpath(*parts)


def env_or_default(name: str, default: Any) -> Any:
    """``EnvVar(name)`` when the variable is set, else the default; ints keep their type."""
    if name not in os.environ:
        return default
    return EnvVar.int(name) if isinstance(default, int) and not isinstance(default, bool) else EnvVar(name)


def source_resource() -> SourceResource:
    return SourceResource(
        kind=env_or_default("REC_DATA_SOURCE", "simulator"),
        data_dir=env_or_default("REC_DATA_DIR", ""),
        simulator_preset=env_or_default("REC_SIM_PRESET", "default"),
        simulator_seed=env_or_default("REC_SIM_SEED", 0),
        home=env_or_default("REC_HOME", ""),
        bad_rows=env_or_default("REC_BAD_ROWS", "quarantine"),
        max_rejected_share=float(os.environ.get("REC_MAX_REJECTED_SHARE", "0.01")),
        earliest_event=env_or_default("REC_EARLIEST_EVENT", DEFAULT_EARLIEST_EVENT),
        future_slack_days=env_or_default("REC_FUTURE_SLACK_DAYS", DEFAULT_FUTURE_SLACK_DAYS),
    )


def warehouse_resource() -> WarehouseResource:
    """The warehouse as configured: REC_DUCKDB for the DuckDB file, REC_TABLE_STORE for a Parquet table store."""
    return WarehouseResource(
        database=env_or_default("REC_DUCKDB", ""),
        table_store=env_or_default("REC_TABLE_STORE", ""),
    )


def windows_resource() -> WindowsResource:
    return WindowsResource(
        history_days=env_or_default("REC_HISTORY_DAYS", 730),
        label_days=env_or_default("REC_LABEL_DAYS", 14),
        recent_popularity_days=env_or_default("REC_RECENT_POPULARITY_DAYS", 60),
        first_scoring_week=env_or_default("REC_FIRST_WEEK", ""),
        min_labelled_users=env_or_default("REC_MIN_LABELLED_USERS", 20),
    )


def resolved(resource: ConfigurableResource) -> ConfigurableResource:
    """The resource with its EnvVar fields read now (for code outside a run, e.g. partitions)."""
    return resource.process_config_and_initialize()
