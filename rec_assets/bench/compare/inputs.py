"""What a ``make compare`` run reads: the materialised weeks, their feature refs and checkpoints, stored rows.

Everything comes from a ``REC_HOME`` the platform wrote (the warehouse, ``artifacts/``, the Dagster instance);
nothing here writes to it. Only :func:`recorded_training` imports dagster.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from rec_assets.asset_io import FEATURE_ASSETS
from rec_assets.bench.compare.protocols import COLUMNS
from rec_assets.model.inputs import WeekData
from rec_assets.model.variants import VARIANTS
from rec_assets.storage.artifacts import load_stored_ref, stored_refs_folder

__all__ = ["FEATURE_ASSETS", "ORACLES", "encoders_label", "feature_refs", "find_oracle_factors",
           "materialised_weeks", "mean_attention", "recorded_training", "stored_rows", "week_checkpoints",
           "week_inputs"]

def encoders_label(artifacts: Path, week: str) -> str:
    """``<cover art>+<synopsis>`` encoders of the week's feature artifacts (``features.encoders``), "unknown" when
    they cannot be read."""
    from rec_assets.features.encoders import week_encoders_label

    try:
        return week_encoders_label(artifacts, week)
    except Exception:  # noqa: BLE001 - a missing or unreadable artifact only leaves the label unknown
        return "unknown"


def materialised_weeks(artifacts: Path) -> list[str]:
    """Weeks with all three feature artifact references."""
    folders = [stored_refs_folder(artifacts, [asset]) for asset in FEATURE_ASSETS.values()]
    sets = [{p.name for p in folder.glob("*")} if folder.is_dir() else set() for folder in folders]
    return sorted(set.intersection(*sets)) if sets else []


def feature_refs(artifacts: Path, week: str) -> dict:
    """kind -> the ``ArtifactRef`` of the week's feature asset (as the asset handed it on)."""
    return {key: load_stored_ref(artifacts, [asset], week) for key, asset in FEATURE_ASSETS.items()}


def week_inputs(conn, artifacts: Path, week: str, lengths):
    """(train phase, score phase, categorical vocabulary) of ``week`` from the warehouse and the feature refs."""
    from rec_assets.model.inputs import ANALYSES, load_week
    from rec_assets.split.windows import week_windows
    from rec_assets.sqlmodels.runner import query

    refs = feature_refs(artifacts, week)
    start = datetime.fromisoformat(week).replace(tzinfo=timezone.utc)
    windows = week_windows(start, start + timedelta(days=7), lengths)
    catalogue = query(conn, ANALYSES["week_catalogue"], {"scoring_week": week}).df()
    train = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], "train")
    score = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], "score")
    vocabulary = refs["categorical"].open().frame("vocabulary")
    return train, score, vocabulary


def week_checkpoints(artifacts: Path, week: str, recorded_seconds: Mapping[str, tuple[str, float]] | None = None,
                 ) -> tuple[dict[str, str], dict[str, float], list[str]]:
    """Loadable checkpoints of the week, their training seconds, and the ones skipped (why).

    Training seconds come from ``recorded_seconds`` (variant -> (sha256, seconds), see :func:`recorded_training`)
    and count only when the sha256 is this file's: the time of the run that wrote exactly this checkpoint."""
    from rec_assets.model.checkpoint import load_checkpoint

    paths, seconds, skipped = {}, {}, []
    for path in sorted((artifacts / "checkpoints").glob(f"*/{week}.pt")):
        variant = path.parent.name
        try:
            loaded = load_checkpoint(path)
        except Exception as error:  # a stale format: say so, compare the rest
            skipped.append(f"{variant}: {error}")
            continue
        paths[variant] = str(path)
        sha256, wall = (recorded_seconds or {}).get(variant, ("", math.nan))
        if sha256 == loaded.sha256:
            seconds[variant] = wall
    return paths, seconds, skipped


def mean_attention(paths: Mapping[str, str], score: WeekData) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> category -> metadata type -> mean attention weight over the week's titles (Figure 4's means),
    for the attention variants among the checkpoints ``paths``."""
    from rec_assets.model.checkpoint import attention_weights, load_checkpoint

    out = {}
    for variant, path in paths.items():
        if VARIANTS[variant].fusion != "attention" or len(VARIANTS[variant].item_types) < 2:
            continue
        weights, types = attention_weights(load_checkpoint(path).model, score.items)
        out[variant] = {category: dict(zip(types, map(float, weights[mask].mean(0))))
                        for category, mask in (("movie", ~score.items.is_tv), ("tv", score.items.is_tv)) if mask.any()}
    return out


def recorded_training(dagster_home: Path, week: str, variants: Sequence[str]) -> dict[str, tuple[str, float]]:
    """variant -> (sha256, wall_seconds) of the latest materialisation of ``tower_checkpoint_<variant>`` for
    ``week`` in the Dagster instance at ``dagster_home`` (the tower assets record both); empty without one.

    The checkpoint files hold no timings on purpose (re-training must give the same bytes), so the run history
    is where training time lives. Imports dagster only here: the rest of this module is pure."""
    if not (dagster_home / "dagster.yaml").is_file():
        return {}
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home.resolve())
    try:
        instance = DagsterInstance.get()
        found = {}
        for variant in variants:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(f"tower_checkpoint_{variant}"), asset_partitions=[week]),
                limit=1,
            ).records
            if not records or records[0].asset_materialization is None:
                continue
            metadata = records[0].asset_materialization.metadata
            if "sha256" in metadata and "wall_seconds" in metadata:
                found[variant] = (str(metadata["sha256"].value), float(metadata["wall_seconds"].value))
        return found
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def stored_rows(conn, week: str, computed: set[str]) -> pd.DataFrame:
    """Rows of the warehouse's ``evaluation_metrics`` for ``week`` of systems this run does not compute (e.g. the
    simulator's oracle rows), as standard-protocol rows without seconds: other assets' systems flow through."""
    try:
        stored = conn.execute("SELECT variant, candidate_set, category, metric, value, evaluated_users"
                              " FROM evaluation_metrics WHERE scoring_week = $w", {"w": week}).df()
    except Exception:  # no table yet: nothing stored
        return pd.DataFrame(columns=list(COLUMNS))
    stored = stored[~stored["variant"].isin(computed)]
    if stored.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    return stored.rename(columns={"variant": "system"}).assign(protocol="standard", train_seconds=math.nan,
                                                               score_seconds=math.nan)[list(COLUMNS)]


ORACLES = ("oracle_metadata", "oracle_all", "oracle_linear_read")


def find_oracle_factors(option: str, home: Path):
    """The simulator's hidden factors for the oracle rows: ``option``'s directory, else the only source directory
    under ``home/sources`` holding them; None for ``none``, for other sources, or when ambiguous."""
    if option.strip().lower() == "none":
        return None
    from rec_assets.evaluation.oracle import load_oracle_factors
    from rec_assets.sources.simulator import ORACLE_FILE

    found = [Path(option)] if option else [p.parent for p in (home / "sources").glob(f"*/{ORACLE_FILE}")]
    return load_oracle_factors(found[0]) if len(found) == 1 else None

