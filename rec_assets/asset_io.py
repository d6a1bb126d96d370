"""What the asset modules share that is not a definition: names, pools, the refs passed between assets, and
a week's inputs read the way every asset reads them. Imports no dagster, so no asset module imports another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from rec_assets.model.inputs import WeekData, load_week
from rec_assets.split.windows import WeekWindows, WindowLengths, week_windows
from rec_assets.sqlmodels.runner import ANALYSES_DIR, discover_queries, query
from rec_assets.storage.artifacts import ArtifactRef
from rec_assets.storage.hashing import require_content

SQL_DIR = Path(__file__).resolve().parents[1] / "dbt_like_sql"
ANALYSES = discover_queries(SQL_DIR, ANALYSES_DIR)

# Every table the graph writes: the raw tables, one per SQL model, the evaluation's and the service's.
WAREHOUSE_TABLES = frozenset({
    "raw_titles", "raw_users", "raw_watch_events", "raw_title_tags", "rejected_rows",
    *(model.stem for model in SQL_DIR.glob("*.sql")), "evaluation_metrics", "weekly_recommendations",
})

RAW_GROUP = "raw"
DISTRIBUTED_GROUP = "distributed_training"  # opt-in: kept out of the default jobs and the schedule
# Every step that writes the DuckDB file is in this pool: one writing process per file.
DUCKDB_POOL = "duckdb_writer"
# Feature kind -> the asset that makes its vectors (the towers' and the evaluation's inputs).
FEATURE_ASSETS = {
    "categorical": "title_categorical_features",
    "synopsis": "title_synopsis_embeddings",
    "cover_art": "title_cover_art_embeddings",
}


def tower_asset_name(variant: str) -> str:
    return f"tower_checkpoint_{variant}"


@dataclass(frozen=True)
class CheckpointRef:
    """A tower asset's output: its checkpoint file, as the evaluation and the recommendations read it."""

    variant: str
    scoring_week: str
    path: str
    sha256: str
    run_id: str


def verified_checkpoint(ref: CheckpointRef) -> str:
    """The checkpoint's path, once the file is found to be the one its materialisation recorded."""
    require_content(Path(ref.path), ref.sha256, "checkpoint",
                    f"re-materialise {tower_asset_name(ref.variant)} for {ref.scoring_week}")
    return ref.path


class TimeWindow(Protocol):
    start: datetime
    end: datetime


def week_windows_for(time_window: TimeWindow, settings: Any) -> WeekWindows:
    """The four windows of the scoring week ``time_window`` (a partition's), with the configured lengths."""
    lengths = WindowLengths(settings.history_days, settings.label_days, settings.recent_popularity_days)
    return week_windows(time_window.start, time_window.end, lengths)


def load_week_catalogue(warehouse_db: Any, week: str) -> pd.DataFrame:
    with warehouse_db.connect(read_only=True) as conn:
        return query(conn, ANALYSES["week_catalogue"], {"scoring_week": week}).df()


def load_week_phase(warehouse_db: Any, settings: Any, time_window: TimeWindow,
                    features: tuple[ArtifactRef, ArtifactRef, ArtifactRef], phase: str) -> WeekData:
    """The week's model inputs for one phase ("train": X -> Y, "score": X' -> Y'), read with a short-lived
    read-only connection so that long training never holds the warehouse lock."""
    week = time_window.start.strftime("%Y-%m-%d")
    catalogue = load_week_catalogue(warehouse_db, week)
    with warehouse_db.connect(read_only=True) as conn:
        return load_week(conn, week_windows_for(time_window, settings), catalogue, *features, phase)
