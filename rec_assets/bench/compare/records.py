"""cold_start.json: per-user values pooled over (user, week) or (user, seed) pairs, and paired comparisons.

A record is one (protocol, system, category, metric) with its 95% bootstrap interval over users
(``evaluation.intervals``); records are named as :data:`RECORD_PROTOCOLS` and :func:`record_system` name them, and
:func:`write_cold_start` replaces only the records of its own dataset and protocols. Pure code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rec_assets.bench.compare.protocols import LIGHTFM_METRICS
from rec_assets.evaluation.intervals import paired_difference, pooled_interval

__all__ = ["OPPONENTS", "RECORD_KEYS", "RECORD_PROTOCOLS", "cold_start_records", "comparisons", "json_default",
           "nan_to_none", "per_user_long", "record_system", "write_cold_start"]

RECORD_PROTOCOLS = {("standard", "warm"): "weekly_warm", ("standard", "cold"): "weekly_cold",
                    ("holdout", "holdout"): "weekly_holdout"}
OPPONENTS: tuple[str, ...] = ("lightfm", "popularity", "random")
RECORD_KEYS: tuple[str, ...] = ("dataset", "protocol", "system", "encoders", "category", "metric", "value", "ci_low",
                                "ci_high", "n_users")


def record_system(system: str) -> str:
    """A system's name in the records: a retrained ``two_tower:<variant>`` is its variant."""
    return system.split(":", 1)[1] if system.startswith("two_tower:") else system


def per_user_long(weekly: pd.DataFrame | None, lightfm: pd.DataFrame | None, k: int) -> pd.DataFrame:
    """Every per-user value as one long frame: protocol (record name), system (record name), category,
    scoring_week, seed, user_id, metric, value. Weekly pairs carry seed -1, LightFM-protocol pairs its seed."""
    columns = ["protocol", "system", "category", "scoring_week", "seed", "user_id", "metric", "value"]
    parts = []
    if weekly is not None and len(weekly):
        frame = weekly.assign(protocol=[RECORD_PROTOCOLS.get((p, c), f"{p}_{c}")
                                        for p, c in zip(weekly["protocol"], weekly["candidate_set"])], seed=-1)
        metrics = [f"p@{k}", f"r@{k}"]
        parts.append(frame.melt(id_vars=["protocol", "system", "category", "scoring_week", "seed", "user_id"],
                                value_vars=metrics, var_name="metric"))
    if lightfm is not None and len(lightfm):
        metrics = [m for m in LIGHTFM_METRICS if m in lightfm.columns]
        parts.append(lightfm.assign(protocol="lightfm_holdout").melt(
            id_vars=["protocol", "system", "category", "scoring_week", "seed", "user_id"], value_vars=metrics,
            var_name="metric"))
    if not parts:
        return pd.DataFrame(columns=columns)
    long = pd.concat(parts, ignore_index=True)[columns]
    long["system"] = long["system"].map(record_system)
    return long.dropna(subset=["value"]).reset_index(drop=True)


def _aggregate_only(results: pd.DataFrame, k: int) -> pd.DataFrame:
    """Weekly aggregate rows (no per-user values) in record names: protocol, system, category, metric, value,
    evaluated_users, scoring_week."""
    df = results[results["metric"].isin(["precision", "recall"])].copy()
    df["protocol"] = [RECORD_PROTOCOLS.get((p, c), f"{p}_{c}") for p, c in zip(df["protocol"], df["candidate_set"])]
    df["metric"] = df["metric"].map({"precision": f"p@{k}", "recall": f"r@{k}"})
    df["system"] = df["system"].map(record_system)
    return df


def cold_start_records(long: pd.DataFrame, results: pd.DataFrame | None, lightfm_means: pd.DataFrame | None, *,
                       dataset: str, encoders: str, k: int, n_resamples: int = 2000, seed: int = 0) -> list[dict]:
    """The records of ``cold_start.json`` (:data:`RECORD_KEYS` plus n_pairs, and seeds/mean/std for the LightFM
    protocol): every (protocol, system, category, metric) pooled over its (user, week) or (user, seed) pairs with
    the 95% bootstrap interval over users. A system with aggregate rows only (e.g. rows another asset stored) gets
    its pooled value (the user-weighted mean of its weeks) and no interval; one that cannot rank (n/a) gets None."""
    records = []
    population = long.groupby(["protocol", "category"])["user_id"].nunique().to_dict() if len(long) else {}
    seen = set()
    for (protocol, system, category, metric), g in long.groupby(["protocol", "system", "category", "metric"],
                                                                 sort=True):
        interval = pooled_interval(g["value"].to_numpy(), g["user_id"].to_numpy(), n_resamples=n_resamples,
                                   seed=seed)
        record = {"dataset": dataset, "protocol": protocol, "system": system, "encoders": encoders,
                  "category": category, "metric": metric, "value": interval.value, "ci_low": interval.low,
                  "ci_high": interval.high, "n_users": interval.n_users, "n_pairs": interval.n_pairs}
        if protocol == "lightfm_holdout":
            per_seed = g.groupby("seed")["value"].mean()
            record.update(seeds=[int(x) for x in per_seed.index], mean=float(per_seed.mean()),
                          std=float(per_seed.std(ddof=1)) if len(per_seed) > 1 else math.nan)
        records.append(record)
        seen.add((protocol, system, category, metric))
    leftovers = []
    if results is not None and len(results):
        leftovers.append(_aggregate_only(results, k))
    if lightfm_means is not None and len(lightfm_means):
        leftovers.append(lightfm_means.assign(protocol="lightfm_holdout", system=lightfm_means["system"]
                                              .map(record_system), scoring_week=""))
    for frame in leftovers:
        for (protocol, system, category, metric), g in frame.groupby(["protocol", "system", "category", "metric"],
                                                                     sort=True):
            if (protocol, system, category, metric) in seen:
                continue
            seen.add((protocol, system, category, metric))
            known = g[g["value"].notna() & (g["evaluated_users"] > 0)]
            n_pairs = int(known["evaluated_users"].sum())
            value = float((known["value"] * known["evaluated_users"]).sum() / n_pairs) if n_pairs else None
            records.append({"dataset": dataset, "protocol": protocol, "system": system, "encoders": encoders,
                            "category": category, "metric": metric, "value": value, "ci_low": None, "ci_high": None,
                            "n_users": int(population.get((protocol, category), 0)),
                            "n_pairs": n_pairs if value is not None else int(g["evaluated_users"].sum())})
    return nan_to_none(records)


def comparisons(long: pd.DataFrame, variants: Sequence[str], k: int, opponents: Sequence[str] = OPPONENTS,
                n_resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Paired bootstrap of each two-tower variant against each opponent on warm and cold P/R@k, weekly-holdout P@k
    and the LightFM protocol's AUC, P@6 and R@6, per category, on the (week or seed, user) pairs both evaluated; verdict
    "n/a" where the opponent cannot rank that protocol's candidates."""
    specs = [("weekly_warm", f"p@{k}"), ("weekly_warm", f"r@{k}"), ("weekly_cold", f"p@{k}"), ("weekly_cold", f"r@{k}"),
             ("weekly_holdout", f"p@{k}"), ("lightfm_holdout", "auc"), ("lightfm_holdout", "p@6"),
             ("lightfm_holdout", "r@6")]
    keys = ["scoring_week", "seed", "user_id"]
    groups = {key: g for key, g in long.groupby(["protocol", "metric", "category", "system"])}
    out = []
    for variant in variants:
        for opponent in opponents:
            for protocol, metric in specs:
                for category in sorted({c for (p, m, c, _) in groups if (p, m) == (protocol, metric)}):
                    a = groups.get((protocol, metric, category, variant))
                    if a is None:
                        continue
                    b = groups.get((protocol, metric, category, opponent))
                    row = {"variant": variant, "opponent": opponent, "protocol": protocol, "category": category,
                           "metric": metric}
                    if b is None:
                        out.append({**row, "difference": None, "ci_low": None, "ci_high": None, "n_users": 0,
                                    "verdict": "n/a"})
                        continue
                    c = paired_difference(a, b, keys=keys, value="value", names=(variant, opponent),
                                          n_resamples=n_resamples, seed=seed)
                    out.append({**row, "difference": c.difference.value, "ci_low": c.difference.low,
                                "ci_high": c.difference.high, "n_users": c.difference.n_users, "verdict": c.verdict})
    return nan_to_none(out)


def write_cold_start(path: Path, dataset: str, records: Sequence[dict]) -> list[dict]:
    """Merge ``records`` into the list at ``path``: the earlier records of ``dataset`` under the protocols that
    ``records`` measured are replaced, every other record is kept (the simulator and the MovieLens runs, and a
    run of one protocol after another, write one file in several invocations)."""
    path = Path(path)
    measured = {r["protocol"] for r in records}
    kept = [r for r in (json.loads(path.read_text()) if path.is_file() else [])
            if r.get("dataset") != dataset or r.get("protocol") not in measured]
    merged = kept + [dict(r) for r in records]
    merged.sort(key=lambda r: tuple(str(r.get(key)) for key in ("dataset", "protocol", "category", "metric",
                                                                "system")))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1, default=json_default) + "\n")
    return merged


def json_default(value):
    """numpy scalars as JSON values (NaN as null), anything else as its string."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def nan_to_none(records: list[dict]) -> list[dict]:
    """``records`` with every float NaN replaced by None (null in JSON)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]

