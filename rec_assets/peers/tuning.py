"""A small, stated hyper-parameter grid per peer, chosen on a validation split that never reads the evaluation labels.

:func:`validation_split` uses the training phase only: fit on X, score on Y (Y ends where the week's Y' begins).
The objective is the mean warm Recall@K (with the cold segments too for LightFM); ties keep the first configuration
of :data:`GRIDS` order. The split, objective and grids in full: docs/design.md, "Peer tuning". Pure code: no
dagster import.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from rec_assets.evaluation.metrics import DEFAULT_TOP_K
from rec_assets.model.inputs import WeekData
from rec_assets.model.data import Interactions
from rec_assets.peers.adapters import (
    ALSConfig, BPRConfig, LightFMConfig, TrainingSet, adapter, config_dict, interaction_matrix,
)
from rec_assets.peers.evaluate import evaluate_fitted, evaluation_context

__all__ = ["GRIDS", "TuningResult", "ValidationSplit", "objective", "tune", "validation_split"]

GRIDS: dict[str, dict[str, dict[str, list]]] = {
    "full": {
        "als": {"factors": [32, 64, 128], "regularization": [0.01, 0.1, 1.0], "iterations": [10, 30],
                "alpha": [1.0, 10.0]},
        "bpr": {"factors": [32, 64, 128], "learning_rate": [0.01, 0.05, 0.1]},
        "lightfm": {"no_components": [16, 64], "learning_rate": [0.02, 0.05], "epochs": [10, 20, 30]},
    },
    "small": {
        "als": {"factors": [16, 32], "regularization": [0.01, 0.1], "iterations": [10], "alpha": [10.0]},
        "bpr": {"factors": [16, 32], "learning_rate": [0.05]},
        "lightfm": {"no_components": [16], "learning_rate": [0.05], "epochs": [5, 10]},
    },
}
DEFAULT_CONFIGS: dict[str, Any] = {"als": ALSConfig(), "bpr": BPRConfig(), "lightfm": LightFMConfig()}


@dataclass
class ValidationSplit:
    """X -> Y of a week's training phase, shaped as a ``WeekData`` and a ``TrainingSet`` (see module docstring)."""

    data: WeekData  # history X, labels Y, warm = watched in X, cold = watched in Y only
    training: TrainingSet  # X only


def validation_split(train: WeekData) -> ValidationSplit:
    """The validation split of the training phase ``train`` (``load_week(..., "train")``): X fits, Y validates."""
    n_titles = train.items.n_titles
    seen_x = np.zeros(n_titles, dtype=bool)
    seen_x[train.users.history_items] = True
    seen_y = np.zeros(n_titles, dtype=bool)
    seen_y[train.labels.title_rows] = True
    catalogue = train.catalogue.copy()
    catalogue["is_warm"] = seen_x
    catalogue["is_cold_start"] = seen_y & ~seen_x
    catalogue["id_known"] = seen_x
    items = replace(train.items, id_known=seen_x)
    data = WeekData(catalogue=catalogue, items=items, users=train.users, labels=train.labels,
                    history_counts=train.history_counts)
    none = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64))
    matrix = interaction_matrix(train.users, none, n_titles)
    return ValidationSplit(data, TrainingSet(items=items, users=train.users, positives=none, matrix=matrix,
                                             trainable=seen_x))


def objective(metrics: pd.DataFrame, scores_cold: bool) -> float:
    """Mean recall of the warm segments with evaluated users; with ``scores_cold``, averaged with the cold one."""
    recall = metrics[(metrics["metric"] == "recall") & (metrics["evaluated_users"] > 0) & metrics["value"].notna()]
    parts = [recall.loc[recall["candidate_set"] == "warm", "value"].mean()]
    if scores_cold:
        cold = recall.loc[recall["candidate_set"] == "cold", "value"]
        if len(cold):
            parts.append(cold.mean())
    values = [p for p in parts if not np.isnan(p)]
    return float(np.mean(values)) if values else float("nan")


@dataclass
class TuningResult:
    peer: str
    grid: dict[str, list]
    chosen: Any  # the config
    objective: float
    trials: pd.DataFrame  # one row per configuration: its parameters, objective, warm/cold recall, seconds
    seconds: float
    validation: dict = field(default_factory=dict)  # what the split held: users, titles

    def to_dict(self) -> dict:
        return {"peer": self.peer, "grid": self.grid, "chosen": config_dict(self.chosen),
                "objective": self.objective, "seconds": round(self.seconds, 2), "validation": self.validation,
                "trials": self.trials.to_dict(orient="records")}


def _trial_row(params: dict, metrics: pd.DataFrame, scores_cold: bool, seconds: float) -> dict:
    recall = metrics[metrics["metric"] == "recall"].set_index(["candidate_set", "category"])["value"]
    row = dict(params)
    row["objective"] = objective(metrics, scores_cold)
    for (candidate_set, category), value in recall.items():
        row[f"recall_{candidate_set}_{category}"] = value
    row["seconds"] = round(seconds, 3)
    return row


def tune(peer: str, train: WeekData, grid: dict[str, list] | str = "full", k: int = DEFAULT_TOP_K,
         base: Any | None = None, split: ValidationSplit | None = None) -> TuningResult:
    """Fit ``peer`` for every configuration of ``grid`` (a dict of lists, or a name in :data:`GRIDS`) on the
    validation split of the training phase ``train`` and keep the best by :func:`objective`.

    ``base``: the configuration the grid's parameters override (default: the peer's defaults).
    """
    started = time.perf_counter()
    grid = GRIDS[grid][peer] if isinstance(grid, str) else grid
    split = split or validation_split(train)
    ctx = evaluation_context(split.data)
    peer_adapter = adapter(peer)
    base = base if base is not None else DEFAULT_CONFIGS.get(peer, peer_adapter.config_type())
    rows, configs = [], []
    staged = peer == "lightfm" and "epochs" in grid
    names = [n for n in grid if not (staged and n == "epochs")]
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values))
        config = replace(base, **params)
        if staged:
            t0 = time.perf_counter()
            for epochs, fitted in peer_adapter.fit_stages(split.training, config, tuple(sorted(grid["epochs"]))):
                metrics, _ = evaluate_fitted(fitted, split.data, ctx, k)
                rows.append(_trial_row({**params, "epochs": epochs}, metrics, True, time.perf_counter() - t0))
                configs.append(replace(config, epochs=epochs))
        else:
            t0 = time.perf_counter()
            fitted = peer_adapter.fit(split.training, config)
            metrics, _ = evaluate_fitted(fitted, split.data, ctx, k)
            rows.append(_trial_row(params, metrics, peer_adapter.scores_cold, time.perf_counter() - t0))
            configs.append(config)
    trials = pd.DataFrame(rows)
    scores = trials["objective"].to_numpy(dtype=float)
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    validation = {"users_evaluated": int(len(ctx.rows)),
                  "warm_titles": int(split.data.catalogue["is_warm"].sum()),
                  "cold_titles": int(split.data.catalogue["is_cold_start"].sum())}
    return TuningResult(peer, {n: list(v) for n, v in grid.items()}, configs[best], float(scores[best]), trials,
                        time.perf_counter() - started, validation)
