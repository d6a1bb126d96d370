"""Markdown tables and figures of the evaluation, shaped like the paper's Table 1, Table 2 and Figure 4.

Input: the long frame of ``metrics.evaluate_segments`` plus ``scoring_week`` and ``variant``. A cell averages only
its contributing weeks (evaluated users and a value); one with none reads ``n/a``, and a lift against an n/a or 0
baseline reads ``lift n/a``. Figures use a bare Agg ``Figure`` (no pyplot), so their PNG bytes are reproducible.
The rules in full: docs/design.md, "Evaluation report". Pure code: no dagster import.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rec_assets.evaluation.metrics import CATEGORIES, DEFAULT_TOP_K, METRICS

__all__ = [
    "CEILING",
    "COLD_ROWS",
    "ORACLE_ROWS",
    "VARIANT_LABELS",
    "WARM_ROWS",
    "attention_figure",
    "attention_figure_object",
    "ceiling_share_markdown",
    "lift_table",
    "png_markdown",
    "summary_across_weeks",
    "summary_markdown",
    "table1_markdown",
    "table2_markdown",
]

LONG_COLUMNS: tuple[str, ...] = (
    "scoring_week", "variant", "candidate_set", "category", "metric", "value", "evaluated_users",
)
WARM_ROWS: tuple[str, ...] = (
    "synopsis", "cover_art", "categorical", "ncf_extension", "concat_no_id", "attention_no_id", "concat_id",
    "attention_id", "popularity", "random",
)
COLD_ROWS: tuple[str, ...] = (
    "random", "attention_no_id", "attention_id", "synopsis", "cover_art", "categorical", "ncf_extension",
    "concat_no_id", "concat_id", "popularity",
)
# Ceilings, evaluated on cold-start titles of the simulator only; shown after the models when present.
ORACLE_ROWS: tuple[str, ...] = ("oracle_metadata", "oracle_all", "oracle_linear_read")
CEILING = "oracle_metadata"
VARIANT_LABELS: dict[str, str] = {
    "synopsis": "Synopsis",
    "cover_art": "Cover art",
    "categorical": "Categorical",
    "ncf_extension": "NCF-extension",
    "concat_no_id": "Con (w/o ID)",
    "attention_no_id": "Att (w/o ID)",
    "concat_id": "Con (w/ ID)",
    "attention_id": "Att (w/ ID)",
    "popularity": "Popularity",
    "random": "Random",
    "oracle_metadata": "oracle (metadata)",
    "oracle_all": "oracle (all factors)",
    "oracle_linear_read": "oracle (true taste, features read linearly)",
}
_METRIC_HEADERS: dict[str, str] = {
    "precision": "P@{k}", "recall": "R@{k}", "coverage": "Cov@{k}", "converted_coverage": "ConCov@{k}",
}
_CATEGORY_HEADERS: dict[str, str] = {"movie": "Movie", "tv": "TV"}
_FRACTION_METRICS = frozenset({"precision", "recall"})


def _check_long(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in LONG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"metrics frame lacks columns {missing}")
    keys = ["scoring_week", "variant", "candidate_set", "category", "metric"]
    duplicated = df.duplicated(keys)
    if duplicated.any():
        raise ValueError(f"metrics frame has {int(duplicated.sum())} duplicate rows for {keys}, e.g.\n"
                         f"{df.loc[duplicated, keys].head(3)}")
    unknown = set(df["metric"]) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}")
    return df


def _contributing(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that count: evaluated users present and a value."""
    return df[(df["evaluated_users"] > 0) & df["value"].notna()]


def _cell_means(df: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    means = _contributing(df).groupby(["variant", "category", "metric"])["value"].mean()
    return {key: float(v) for key, v in means.items()}


def _format_value(metric: str, value: float) -> str:
    if metric in _FRACTION_METRICS:
        return f"{100.0 * value:.2f}%"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "| " + " | ".join("---" for _ in header) + " |", *(line(r) for r in rows)])


def lift_table(
    metrics_long_df: pd.DataFrame,
    baseline: str = "synopsis",
    rows: Sequence[str] | None = None,
    *,
    candidate_set: str = "warm",
    k: int = DEFAULT_TOP_K,
    scoring_weeks: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
) -> str:
    """A Markdown table of absolute values and % lifts against ``baseline``, one row per variant.

    Columns: P@k, R@k, Cov@k, ConCov@k, each for Movie and TV (the paper's layout). Cells read
    ``absolute (lift %)``; the baseline row reads ``absolute (B)``. ``rows`` orders the variants (default
    ``WARM_ROWS`` for warm, ``COLD_ROWS`` for cold); a listed variant with no data at all shows ``—`` cells, and a
    variant in the data but not listed is appended, so no result is silently dropped. ``scoring_weeks`` restricts
    the weeks (default: all in the frame). ``k`` only labels the columns. Returns a caption line, the table and a
    legend line.
    """
    df = _check_long(metrics_long_df)
    df = df[df["candidate_set"] == candidate_set]
    if scoring_weeks is not None:
        df = df[df["scoring_week"].isin(list(scoring_weeks))]
    if rows is None:
        rows = WARM_ROWS if candidate_set == "warm" else COLD_ROWS
    present_variants = set(df["variant"])
    row_order = list(rows) + sorted(present_variants - set(rows))
    if baseline not in row_order:
        row_order.insert(0, baseline)
    labels = {**VARIANT_LABELS, **(labels or {})}
    means = _cell_means(df)
    columns = [(metric, category) for metric in METRICS for category in CATEGORIES]

    body = []
    for variant in row_order:
        label = labels.get(variant, variant) + (" (B)" if variant == baseline else "")
        cells = [label]
        for metric, category in columns:
            if variant not in present_variants:
                cells.append("—")
                continue
            value = means.get((variant, category, metric))
            if value is None:
                cells.append("n/a")
                continue
            absolute = _format_value(metric, value)
            if variant == baseline:
                cells.append(f"{absolute} (B)")
                continue
            base = means.get((baseline, category, metric))
            if base is None or base == 0:
                cells.append(f"{absolute} (lift n/a)")
            else:
                cells.append(f"{absolute} ({100.0 * (value - base) / base:+.2f}%)")
        body.append(cells)

    header = ["Model"] + [f"{_METRIC_HEADERS[m].format(k=k)} {_CATEGORY_HEADERS[c]}" for m, c in columns]
    weeks = sorted(str(w) for w in df["scoring_week"].unique())
    if caption is None:
        span = f"{weeks[0]} … {weeks[-1]}" if len(weeks) > 1 else (weeks[0] if weeks else "none")
        caption = (f"**{candidate_set.capitalize()} titles, K = {k}, lift vs {labels.get(baseline, baseline)}** "
                   f"(scoring weeks: {span}; n = {len(weeks)}; multi-week cells are means)")
    legend = ("P and R: absolute in %, Cov and ConCov: distinct titles; (lift %) = 100·(value − B)/B. "
              "n/a: no evaluated user in that category; —: variant not run; lift n/a: baseline n/a or 0.")
    return "\n\n".join([caption, _markdown_table(header, body), legend])


def table1_markdown(metrics_long_df: pd.DataFrame, **kwargs) -> str:
    """The paper's Table 1: warm titles, lift vs the synopsis-only model."""
    return lift_table(metrics_long_df, baseline="synopsis", rows=WARM_ROWS, candidate_set="warm", **kwargs)


def table2_markdown(metrics_long_df: pd.DataFrame, **kwargs) -> str:
    """The paper's Table 2: cold-start titles of the week, lift vs random; with the oracle rows when the frame has
    them (the simulator), followed by every row's P and R as a share of ``oracle (metadata)``."""
    present = set(metrics_long_df["variant"])
    rows = kwargs.pop("rows", None) or (*COLD_ROWS, *(v for v in ORACLE_ROWS if v in present))
    table = lift_table(metrics_long_df, baseline="random", rows=rows, candidate_set="cold", **kwargs)
    share_kwargs = {key: kwargs[key] for key in ("k", "scoring_weeks", "labels") if key in kwargs}
    share = ceiling_share_markdown(metrics_long_df, rows=rows, **share_kwargs)
    return table if not share else f"{table}\n\n{share}"


def ceiling_share_markdown(
    metrics_long_df: pd.DataFrame,
    ceiling: str = CEILING,
    rows: Sequence[str] | None = None,
    *,
    candidate_set: str = "cold",
    k: int = DEFAULT_TOP_K,
    scoring_weeks: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Each row's P@k and R@k (Movie, TV) as a % of the ``ceiling`` system's, from the same cell means as
    :func:`lift_table`; "" when the frame has no ``ceiling`` rows (sources other than the simulator)."""
    df = _check_long(metrics_long_df)
    df = df[df["candidate_set"] == candidate_set]
    if scoring_weeks is not None:
        df = df[df["scoring_week"].isin(list(scoring_weeks))]
    if ceiling not in set(df["variant"]):
        return ""
    labels = {**VARIANT_LABELS, **(labels or {})}
    present = set(df["variant"])
    order = [v for v in (rows or COLD_ROWS) if v in present] + sorted(present - set(rows or COLD_ROWS))
    means = _cell_means(df)
    columns = [(metric, category) for metric in ("precision", "recall") for category in CATEGORIES]
    body = []
    for variant in order:
        cells = [labels.get(variant, variant)]
        for metric, category in columns:
            value, top = means.get((variant, category, metric)), means.get((ceiling, category, metric))
            cells.append("n/a" if value is None or not top else f"{100.0 * value / top:.0f}%")
        body.append(cells)
    header = ["Model"] + [f"{_METRIC_HEADERS[m].format(k=k)} {_CATEGORY_HEADERS[c]}" for m, c in columns]
    caption = (f"**Share of {labels.get(ceiling, ceiling)} {_METRIC_HEADERS['precision'].format(k=k)} and "
               f"{_METRIC_HEADERS['recall'].format(k=k)}** (100·value / ceiling, {candidate_set} titles; the "
               "ceiling ranks by the true affinity of the hidden factors that metadata carries)")
    return "\n\n".join([caption, _markdown_table(header, body)])


def summary_across_weeks(metrics_long_df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1: NaN for one week), min, max and n_weeks of each variant/candidate_set/category/metric.

    Only contributing weeks (evaluated users present, value not NaN) count; a group with none has n_weeks 0 and
    NaN statistics, so a missing category stays visible.
    """
    df = _check_long(metrics_long_df)
    keys = ["variant", "candidate_set", "category", "metric"]
    groups = df[keys].drop_duplicates()
    stats = (
        _contributing(df).groupby(keys)["value"]
        .agg(mean="mean", std="std", min="min", max="max", n_weeks="count")
        .reset_index()
    )
    out = groups.merge(stats, on=keys, how="left")
    out["n_weeks"] = out["n_weeks"].fillna(0).astype("int64")
    return out.sort_values(keys, ignore_index=True)


def summary_markdown(summary: pd.DataFrame) -> str:
    """Markdown of :func:`summary_across_weeks`; precision and recall in %, NaN as n/a."""

    def fmt(metric: str, value: float) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return f"{100.0 * value:.3f}%" if metric in _FRACTION_METRICS else f"{value:.1f}"

    header = ["variant", "candidate set", "category", "metric", "mean", "std", "min", "max", "weeks"]
    body = [
        [r.variant, r.candidate_set, r.category, r.metric,
         *(fmt(r.metric, getattr(r, s)) for s in ("mean", "std", "min", "max")), str(r.n_weeks)]
        for r in summary.itertuples(index=False)
    ]
    return _markdown_table(header, body)


def spread_markdown(metrics_long_df: pd.DataFrame, metrics: Sequence[str] = ("precision", "recall"),
                    category: str = "movie") -> str:
    """One row per variant, one column per candidate set and metric: ``mean ± std`` across the contributing weeks
    (in %), with the number of weeks; variants in the paper's row order, baselines first."""
    summary = summary_across_weeks(metrics_long_df)
    summary = summary[(summary["category"] == category) & summary["metric"].isin(metrics)]
    columns = [(c, m) for c in ("warm", "cold") for m in metrics if c in set(summary["candidate_set"])]
    order = [v for v in ("random", "popularity", *WARM_ROWS) if v in set(summary["variant"])]
    order = list(dict.fromkeys(order))  # baselines first, once
    order += sorted(set(summary["variant"]) - set(order))
    names = {"precision": "P", "recall": "R", "coverage": "Cov", "converted_coverage": "ConCov"}
    header = ["variant", *(f"{c} {names.get(m, m)} ({category})" for c, m in columns), "weeks (warm / cold)"]
    body = []
    for variant in order:
        rows = summary[summary["variant"] == variant].set_index(["candidate_set", "metric"])
        cells = []
        for key in columns:
            if key not in rows.index or rows.loc[key, "n_weeks"] == 0:
                cells.append("n/a")
                continue
            mean, std = rows.loc[key, "mean"], rows.loc[key, "std"]
            cells.append(f"{100 * mean:.2f}%" + ("" if math.isnan(std) else f" ± {100 * std:.2f}"))
        weeks = [str(int(rows.loc[(c, metrics[0]), "n_weeks"])) if (c, metrics[0]) in rows.index else "0"
                 for c in ("warm", "cold")]
        body.append([variant, *cells, " / ".join(weeks)])
    return _markdown_table(header, body)


def attention_figure(
    weights: np.ndarray,
    type_names: Sequence[str],
    is_tv: np.ndarray,
    *,
    title: str = "Attention weight per metadata type",
) -> bytes:
    """PNG of the distribution of attention weights per metadata type, movies and TV side by side (Figure 4).

    ``weights``: [n_titles, n_types], each row an item tower's softmax over its metadata types; ``type_names``:
    the n_types labels; ``is_tv``: bool [n_titles]. Rows with a NaN are left out. A category without titles gets an
    empty panel saying so. Box plots show median, quartiles and 1.5 IQR whiskers; the triangle is the mean.
    """
    buffer = io.BytesIO()
    attention_figure_object(weights, type_names, is_tv, title=title).savefig(
        buffer, format="png", metadata={"Software": None}
    )
    return buffer.getvalue()


def attention_figure_object(weights, type_names, is_tv, *, title: str = "Attention weight per metadata type"):
    """The ``matplotlib.figure.Figure`` behind :func:`attention_figure` (for inspection or other formats)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = np.asarray(weights, dtype=np.float64)
    is_tv = np.asarray(is_tv, dtype=bool)
    if weights.ndim != 2 or weights.shape[1] != len(type_names):
        raise ValueError(f"weights must be [n_titles, {len(type_names)}], got {weights.shape}")
    if is_tv.shape != (weights.shape[0],):
        raise ValueError(f"is_tv must be [{weights.shape[0]}], got {is_tv.shape}")
    complete = ~np.isnan(weights).any(axis=1)

    fig = Figure(figsize=(4.0 + 1.4 * len(type_names), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    positions = list(range(1, len(type_names) + 1))
    for ax, (name, in_category) in zip(axes, (("Movies", ~is_tv), ("TV", is_tv))):
        selected = weights[complete & in_category]
        ax.set_title(f"{name} (n = {selected.shape[0]})")
        ax.grid(axis="y", alpha=0.3)
        if selected.shape[0] == 0:
            ax.text(0.5, 0.5, "no titles", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.boxplot([selected[:, j] for j in range(selected.shape[1])], positions=positions, showmeans=True,
                       showfliers=False)
        # After boxplot, which would otherwise relabel the ticks 1..n.
        ax.set_xlim(0.5, len(type_names) + 0.5)
        ax.set_xticks(positions, list(type_names), rotation=20)
    axes[0].set_ylabel("attention weight α")
    axes[0].set_ylim(0.0, 1.0)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def png_markdown(png: bytes, alt: str) -> str:
    """``![alt](data:image/png;base64,...)`` for embedding a PNG in Markdown (e.g. Dagster ``MetadataValue.md``)."""
    safe_alt = alt.replace("[", "(").replace("]", ")").replace("\n", " ")
    return f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
