"""The paper's findings, each checked against measured per-user values: "holds", "does not hold" or "not separable".

A finding is a set of paired comparisons A vs B of P@k (``evaluation.intervals.paired_difference``, users resampled)
on one weekly protocol and category. It holds when A is significantly better in every comparison, does not hold when
A is significantly worse in any, and is not separable otherwise; "not measured" when no comparison could be made
(a system missing, or no shared (user, week) pairs). The attention-weight finding reads mean weights, no interval.

Pure code: no dagster import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from rec_assets.evaluation.intervals import paired_difference
from rec_assets.evaluation.metrics import DEFAULT_TOP_K
from rec_assets.model.variants import VARIANTS

__all__ = ["HOLDS", "NOT_HOLD", "NOT_MEASURED", "NOT_SEPARABLE", "TWO_TOWER", "findings_markdown", "paper_findings"]

HOLDS, NOT_HOLD, NOT_SEPARABLE, NOT_MEASURED = "holds", "does not hold", "not separable", "not measured"
CATEGORIES = ("movie", "tv")
KEYS = ["scoring_week", "seed", "user_id"]
TWO_TOWER = tuple(VARIANTS)  # the two-tower variants of the paper's tables
WARM_COLD = ("weekly_warm", "weekly_cold")


def _specs() -> list[tuple[str, str, tuple[str, ...], list[tuple[str, str]]]]:
    """(finding id, statement, protocols, [(A, B), ...]) of the interval findings."""
    return [
        ("categorical_best_single_type", "categorical is the best single metadata type", WARM_COLD,
         [("categorical", "synopsis"), ("categorical", "cover_art")]),
        ("attention_beats_concat", "attention beats concatenation", WARM_COLD,
         [("attention_no_id", "concat_no_id"), ("attention_id", "concat_id")]),
        ("attention_id_best_warm", "attention w/ ID is best on warm titles", ("weekly_warm",),
         [("attention_id", b) for b in TWO_TOWER if b != "attention_id"]),
        ("attention_no_id_best_cold", "attention w/o ID is best on cold titles", ("weekly_cold",),
         [("attention_no_id", b) for b in TWO_TOWER if b != "attention_no_id"]),
    ]


def _clean(value):
    # NaN is not JSON; None is what the records elsewhere use for "no value".
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _points(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _verdict(comparisons: list[dict]) -> str:
    if not comparisons:
        return NOT_MEASURED
    better = [c["verdict"] == f"{c['a']} beats {c['b']}" for c in comparisons]
    if any(c["verdict"] == f"{c['b']} beats {c['a']}" for c in comparisons):
        return NOT_HOLD
    return HOLDS if all(better) else NOT_SEPARABLE


def _compare(groups: Mapping, protocol: str, metric: str, category: str, pairs, n_resamples: int,
             seed: int) -> list[dict]:
    out = []
    for a_name, b_name in pairs:
        a, b = groups.get((protocol, metric, category, a_name)), groups.get((protocol, metric, category, b_name))
        if a is None or b is None:
            continue  # a system not measured here is no evidence either way
        c = paired_difference(a, b, keys=KEYS, value="value", names=(a_name, b_name), n_resamples=n_resamples,
                              seed=seed)
        if c.difference.n_pairs == 0:
            continue  # no (user, week) pair evaluated by both: nothing was compared
        d = c.difference
        out.append({"a": a_name, "b": b_name, "difference": _clean(d.value), "ci_low": _clean(d.low),
                    "ci_high": _clean(d.high), "n_users": int(d.n_users), "verdict": c.verdict})
    return out


def _evidence(comparisons: list[dict]) -> str:
    return "; ".join(f"{c['a']} − {c['b']} {'+' if (c['difference'] or 0) >= 0 else ''}{_points(c['difference'])}"
                     f" points [{_points(c['ci_low'])}, {_points(c['ci_high'])}]" for c in comparisons) or "n/a"


def _attention_rows(attention_means: Mapping[str, Mapping[str, Mapping[str, float]]] | None) -> list[dict]:
    """One row per (variant, category) of the mean attention weights: holds when cover_art's mean is the lowest."""
    base = {"finding": "cover_art_lowest_attention", "statement": "cover art gets the lowest attention weight",
            "protocol": None, "metric": "mean attention weight", "comparisons": [],
            "note": "mean attention weights per metadata type; no interval"}
    if not attention_means:
        return [{**base, "category": None, "variant": None, "verdict": NOT_MEASURED, "evidence": "n/a",
                 "note": "no attention weights given"}]
    rows = []
    for variant, by_category in sorted(attention_means.items()):
        for category, means in sorted(by_category.items()):
            means = {t: float(w) for t, w in means.items() if _clean(float(w)) is not None}
            others = {t: w for t, w in means.items() if t != "cover_art"}
            if "cover_art" not in means or not others:
                verdict = NOT_MEASURED
            else:
                verdict = HOLDS if means["cover_art"] < min(others.values()) else NOT_HOLD
            evidence = ", ".join(f"{t} {w:.3f}" for t, w in sorted(means.items(), key=lambda kv: kv[1])) or "n/a"
            rows.append({**base, "category": category, "variant": variant, "verdict": verdict,
                         "evidence": f"{variant}: {evidence}"})
    return rows


def paper_findings(long: pd.DataFrame, k: int = DEFAULT_TOP_K, attention_means=None, n_resamples: int = 2000,
                   seed: int = 0) -> list[dict]:
    """The paper's findings as rows (finding, statement, protocol, category, metric, comparisons, verdict, evidence,
    note), from ``long`` (protocol, system, category, scoring_week, seed, user_id, metric, value: one row per
    evaluated pair) on P@``k``, per weekly protocol and category (movie/tv) present, plus the attention-weight rows
    from ``attention_means`` (variant -> category -> metadata type -> mean weight)."""
    metric = f"p@{k}"
    groups = {key: g for key, g in long.groupby(["protocol", "metric", "category", "system"])} if len(long) else {}
    rows = []
    for finding, statement, protocols, pairs in _specs():
        for protocol in protocols:
            present = {c for (p, m, c, _) in groups if (p, m) == (protocol, metric)}
            # A protocol with no category at all still gets a row, so the table shows what was not measured.
            for category in [c for c in CATEGORIES if c in present] or [None]:
                comparisons = _compare(groups, protocol, metric, category, pairs, n_resamples, seed)
                rows.append({"finding": finding, "statement": statement, "protocol": protocol, "category": category,
                             "metric": metric, "comparisons": comparisons, "verdict": _verdict(comparisons),
                             "evidence": _evidence(comparisons), "note": None})
    return rows + _attention_rows(attention_means)


def findings_markdown(rows: list[dict], dataset: str) -> str:
    """A markdown section: the findings table (finding | protocol | category | verdict | evidence)."""
    lines = [f"## The paper's findings on {dataset}", "",
             "Differences of P@k in percentage points, A − B, with 95% paired bootstrap intervals over users. "
             "A finding holds when A is significantly better in every comparison, does not hold when it is "
             "significantly worse in any.", "",
             "| finding | protocol | category | verdict | evidence |", "|---|---|---|---|---|"]
    for r in rows:
        evidence = r["evidence"] + (f" ({r['note']})" if r.get("note") else "")
        lines.append(f"| {r['statement']} | {r['protocol'] or '—'} | {r['category'] or '—'} | **{r['verdict']}** "
                     f"| {evidence.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
