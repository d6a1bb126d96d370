"""The model's inputs for a scoring week, built from the warehouse and the feature artifacts.

Pure code (no dagster import). Training reads history X and labels Y with the features whose popularity
is as of the end of X; scoring reads history X' and labels Y' with popularity as of the end of X'. Every
title row follows the week's catalogue (``title_id`` order), the same order the feature artifacts use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from rec_assets.features.categorical import interaction_columns
from rec_assets.model.data import Interactions, ItemFeatures, UserData
from rec_assets.split.windows import WeekEvaluability, WeekWindows
from rec_assets.sqlmodels.runner import ANALYSES_DIR, discover_queries, query
from rec_assets.storage.artifacts import ArtifactRef

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
ANALYSES = discover_queries(SQL_DIR, ANALYSES_DIR)

Phase = Literal["train", "score"]


@dataclass
class WeekData:
    """Everything one phase of a scoring week needs, in row space of ``catalogue``."""

    catalogue: pd.DataFrame  # title_id, category, is_warm, is_cold_start, id_known, ...
    items: ItemFeatures
    users: UserData
    labels: Interactions  # Y (train) or Y' (score)
    history_counts: np.ndarray  # int64 [n_titles]: views in the phase's history window (popularity baseline)

    def title_rows(self, title_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.items.title_ids, title_ids)


def _check_same_titles(name: str, ref_ids: np.ndarray, catalogue_ids: np.ndarray) -> None:
    if not np.array_equal(ref_ids, catalogue_ids):
        raise ValueError(
            f"the {name} artifact holds {len(ref_ids)} titles but the week's catalogue has {len(catalogue_ids)}:"
            " re-materialise the feature assets of this week"
        )


def item_features(
    catalogue: pd.DataFrame,
    categorical: ArtifactRef,
    synopsis: ArtifactRef,
    cover_art: ArtifactRef,
    phase: Phase,
) -> ItemFeatures:
    title_ids = catalogue["title_id"].to_numpy(dtype=np.int64)
    cat, syn, img = categorical.open(), synopsis.open(), cover_art.open()
    for name, artifact in (("categorical", cat), ("synopsis", syn), ("cover_art", img)):
        _check_same_titles(name, np.asarray(artifact.array("title_ids")), title_ids)
    popularity_bins, no_views = interaction_columns(cat.frame("vocabulary"))
    return ItemFeatures(
        title_ids=title_ids,
        is_tv=(catalogue["category"] == "tv").to_numpy(),
        categorical_offsets=np.asarray(cat.array(f"{phase}_offsets"), dtype=np.int64),
        categorical_indices=np.asarray(cat.array(f"{phase}_indices"), dtype=np.int64),
        categorical_width=int(cat.meta()["width"]),
        synopsis=np.asarray(syn.array("embeddings"), dtype=np.float32),
        synopsis_missing=np.asarray(syn.array("missing"), dtype=bool),
        cover_art=np.asarray(img.array("embeddings"), dtype=np.float32),
        cover_art_missing=np.asarray(img.array("missing"), dtype=bool),
        id_known=catalogue["id_known"].to_numpy(dtype=bool),
        interaction_columns=popularity_bins,
        no_views_columns=no_views,
    )


def encode_user_features(users: pd.DataFrame) -> tuple[np.ndarray, list[int]]:
    """Integer codes per categorical user column (0 = unknown), codes assigned in sorted value order. A column with
    no known value is left out, so a source without user features gets a history-only user tower."""
    columns = [c for c in users.columns if c != "user_id" and users[c].notna().any()]
    codes = np.zeros((len(users), len(columns)), dtype=np.int64)
    cardinalities: list[int] = []
    for j, column in enumerate(columns):
        values = users[column].astype("string")
        known = sorted(v for v in values.dropna().unique() if v != "")
        lookup = {v: i + 1 for i, v in enumerate(known)}
        codes[:, j] = [lookup.get(v, 0) if isinstance(v, str) else 0 for v in values.tolist()]
        cardinalities.append(len(known))
    return codes, cardinalities


def window_events(conn: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    return query(conn, ANALYSES["window_events"], {"window_start": start, "window_end": end}).df()


def _histories(user_ids: np.ndarray, events: pd.DataFrame, title_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of title rows per user in time order; events on titles outside the catalogue are dropped."""
    rows = np.searchsorted(title_ids, events["title_id"].to_numpy(dtype=np.int64))
    rows = np.minimum(rows, len(title_ids) - 1)
    in_catalogue = title_ids[rows] == events["title_id"].to_numpy(dtype=np.int64)
    user_rows = np.searchsorted(user_ids, events["user_id"].to_numpy(dtype=np.int64))
    user_rows = np.minimum(user_rows, len(user_ids) - 1)
    known_user = user_ids[user_rows] == events["user_id"].to_numpy(dtype=np.int64)
    keep = in_catalogue & known_user
    user_rows, rows = user_rows[keep], rows[keep]
    order = np.argsort(user_rows, kind="stable")  # events arrive sorted by (user, ts): stable keeps time order
    offsets = np.zeros(len(user_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(user_rows, minlength=len(user_ids)), out=offsets[1:])
    return offsets, rows[order].astype(np.int64)


def _labels(user_ids: np.ndarray, events: pd.DataFrame, title_ids: np.ndarray) -> Interactions:
    offsets, rows = _histories(user_ids, events, title_ids)
    user_rows = np.repeat(np.arange(len(user_ids), dtype=np.int64), np.diff(offsets))
    pairs = np.unique(np.stack([user_rows, rows], axis=1), axis=0) if len(rows) else np.zeros((0, 2), np.int64)
    return Interactions(user_rows=pairs[:, 0].astype(np.int64), title_rows=pairs[:, 1].astype(np.int64))


def load_week(
    conn: duckdb.DuckDBPyConnection,
    windows: WeekWindows,
    catalogue: pd.DataFrame,
    categorical: ArtifactRef,
    synopsis: ArtifactRef,
    cover_art: ArtifactRef,
    phase: Phase,
) -> WeekData:
    params = windows.as_sql_parameters()
    if phase == "train":
        history_window, label_window = (params["x_start"], params["x_end"]), (params["y_start"], params["y_end"])
    else:
        history_window, label_window = (params["xp_start"], params["xp_end"]), (params["yp_start"], params["yp_end"])
    items = item_features(catalogue, categorical, synopsis, cover_art, phase)
    users_frame = query(conn, ANALYSES["week_users"], {"yp_end": params["yp_end"]}).df()
    user_ids = users_frame["user_id"].to_numpy(dtype=np.int64)
    codes, cardinalities = encode_user_features(users_frame)
    history = window_events(conn, *history_window)
    labels = window_events(conn, *label_window)
    offsets, rows = _histories(user_ids, history, items.title_ids)
    users = UserData(user_ids, codes, cardinalities, offsets, rows)
    return WeekData(
        catalogue=catalogue,
        items=items,
        users=users,
        labels=_labels(user_ids, labels, items.title_ids),
        history_counts=np.bincount(rows, minlength=items.n_titles).astype(np.int64),
    )


def week_evaluability(conn: duckdb.DuckDBPyConnection, windows: WeekWindows, minimum: int) -> WeekEvaluability:
    """How many users the week's stored events give to train on (Y) and to evaluate on (Y'), against ``minimum``."""
    label_users, scoring_users = query(conn, ANALYSES["week_labelled_users"], windows.as_sql_parameters()).fetchone()
    return WeekEvaluability(windows, int(label_users), int(scoring_users), minimum)
