"""Categorical title features: one multi-hot vector per title (paper section 3.2), as CSR rows (`SparseRows`).

The vector concatenates one block per field, in :data:`FIELDS` order: genre, subgenre, the most frequent actors,
directors and tags, maturity rating, country, release year, acquisition month, and two popularity windows. The
vocabulary is fitted once, on the catalogue and the *training* popularity and tags, then encodes both training and
scoring frames (popularity bin edges live in the vocabulary); a missing value sets no bit in its block. Each
block's columns, and why tags are time-dependent: docs/design.md, "Categorical title features".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The fields, in block order in the vector; each also has a name below (``GENRE == "genre"``, ...).
FIELDS: tuple[str, ...] = (
    "genre", "subgenre", "actor", "director", "tag", "maturity_rating", "country", "release_year",
    "acquisition_month", "popularity_2y", "popularity_60d",
)
(GENRE, SUBGENRE, ACTOR, DIRECTOR, TAG, MATURITY_RATING, COUNTRY, RELEASE_YEAR, ACQUISITION_MONTH, POPULARITY_2Y,
 POPULARITY_60D) = FIELDS

#: Popularity field -> column of the popularity frame holding log(views / total views) for that period.
POPULARITY_SHARE_COLUMNS: Mapping[str, str] = {POPULARITY_2Y: "share_long_log", POPULARITY_60D: "share_recent_log"}
#: Popularity field -> column holding the raw view count (0 or missing also means "no views").
POPULARITY_VIEW_COLUMNS: Mapping[str, str] = {POPULARITY_2Y: "views_long", POPULARITY_60D: "views_recent"}
NO_VIEWS = "no_views"

VOCABULARY_COLUMNS: tuple[str, ...] = ("field", "value", "column", "lower", "upper")


@dataclass(frozen=True)
class CategoricalConfig:
    """How the categorical vector is built.

    ``popularity_bins = 0`` leaves both popularity blocks out (then no popularity frame is needed).
    """

    top_n_actors: int = 2000
    top_n_directors: int = 2000
    top_n_tags: int = 500
    release_year_bucket: int = 1
    popularity_bins: int = 10

    def __post_init__(self) -> None:
        if self.top_n_actors < 0 or self.top_n_directors < 0 or self.top_n_tags < 0:
            raise ValueError("top_n_actors, top_n_directors and top_n_tags must be >= 0")
        if self.release_year_bucket < 1:
            raise ValueError("release_year_bucket must be >= 1")
        if self.popularity_bins < 0:
            raise ValueError("popularity_bins must be >= 0")


@dataclass(frozen=True)
class SparseRows:
    """Multi-hot rows in CSR form: row ``r`` has ones at ``indices[offsets[r]:offsets[r + 1]]`` (sorted, unique).

    ``dropped`` counts, per field, values that the vocabulary does not know (dropped from the row);
    ``clipped`` counts, per popularity field, finite shares outside the fitted range that went to an end bin.
    """

    title_ids: np.ndarray  # int64 [n], the row order (that of the titles frame)
    offsets: np.ndarray  # int64 [n + 1]
    indices: np.ndarray  # int32 [nnz]
    width: int
    dropped: Mapping[str, int] = field(default_factory=dict)
    clipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.offsets[r] : self.offsets[r + 1]]

    def nnz_per_row(self) -> np.ndarray:
        return np.diff(self.offsets)

    def to_dense(self, dtype: type = np.float32) -> np.ndarray:
        dense = np.zeros((self.n_rows, self.width), dtype=dtype)
        rows = np.repeat(np.arange(self.n_rows), self.nnz_per_row())
        dense[rows, self.indices] = 1
        return dense


# --------------------------------------------------------------------------------------------------------------------
# Value extraction: every field becomes (row index, value string) pairs.


def _as_list(cell: object) -> list[str]:
    """A list cell as a list of distinct non-empty strings; ``None``/NaN gives ``[]``."""
    if cell is None:
        return []
    if isinstance(cell, str):
        items: Iterable[object] = [cell]
    elif isinstance(cell, float) and math.isnan(cell):
        return []
    else:
        items = cell  # list, tuple or numpy array (as read back from Parquet)
    out: list[str] = []
    for item in items:
        if item is None or (isinstance(item, float) and math.isnan(item)):
            continue
        text = str(item)
        if text and text not in out:
            out.append(text)
    return out


def _list_pairs(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    rows: list[int] = []
    names: list[str] = []
    for r, cell in enumerate(values.tolist()):
        for name in _as_list(cell):
            rows.append(r)
            names.append(name)
    return np.asarray(rows, dtype=np.int64), names


def _scalar_pairs(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    rows: list[int] = []
    names: list[str] = []
    for r, cell in enumerate(values.tolist()):
        if cell is None or cell is pd.NA or cell is pd.NaT or (isinstance(cell, float) and math.isnan(cell)):
            continue
        text = str(cell)
        if text:
            rows.append(r)
            names.append(text)
    return np.asarray(rows, dtype=np.int64), names


def _year_label(year: int, bucket: int) -> str:
    if bucket == 1:
        return str(year)
    start = (year // bucket) * bucket
    return f"{start}-{start + bucket - 1}"


def _year_pairs(values: pd.Series, bucket: int) -> tuple[np.ndarray, list[str]]:
    years = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    rows = np.flatnonzero(~np.isnan(years))
    return rows.astype(np.int64), [_year_label(int(years[r]), bucket) for r in rows]


def _month_pairs(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    dates = pd.to_datetime(values, errors="coerce")
    present = dates.notna().to_numpy()
    rows = np.flatnonzero(present)
    labels = dates[present].dt.strftime("%Y-%m").tolist()
    return rows.astype(np.int64), labels


def _field_pairs(titles: pd.DataFrame, name: str, config: CategoricalConfig) -> tuple[np.ndarray, list[str]]:
    if name == GENRE:
        return _list_pairs(titles["genres"])
    if name == SUBGENRE:
        return _list_pairs(titles["subgenres"])
    if name == ACTOR:
        return _list_pairs(titles["actors"])
    if name == DIRECTOR:
        return _list_pairs(titles["directors"])
    if name == TAG:
        if "tags" not in titles.columns:  # a catalogue without tags: the block stays empty
            return np.zeros(0, dtype=np.int64), []
        return _list_pairs(titles["tags"])
    if name == MATURITY_RATING:
        return _scalar_pairs(titles["maturity_rating"])
    if name == COUNTRY:
        return _scalar_pairs(titles["country"])
    if name == RELEASE_YEAR:
        return _year_pairs(titles["release_year"], config.release_year_bucket)
    if name == ACQUISITION_MONTH:
        return _month_pairs(titles["acquisition_date"])
    raise KeyError(name)


def _top_n(names: list[str], n: int) -> list[str]:
    """The ``n`` most frequent names, most frequent first, ties broken by name so the cut is deterministic."""
    counts = Counter(names)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [name for name, _ in ranked[:n]]


# --------------------------------------------------------------------------------------------------------------------
# Popularity


def _popularity_shares(
    titles: pd.DataFrame, popularity: pd.DataFrame, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per title row: the log share for the field's period and whether the title had views at all.

    A title absent from ``popularity`` (e.g. a cold-start title), with 0 views, or with a non-finite share has no
    views.
    """
    share_col = POPULARITY_SHARE_COLUMNS[name]
    views_col = POPULARITY_VIEW_COLUMNS[name]
    if popularity["title_id"].duplicated().any():
        raise ValueError("popularity has duplicate title_id rows")
    indexed = popularity.set_index("title_id")
    title_ids = titles["title_id"].to_numpy(dtype=np.int64)
    shares = (
        pd.to_numeric(indexed[share_col], errors="coerce")
        .reindex(title_ids)
        .to_numpy(dtype=np.float64, na_value=np.nan)
    )
    has_views = np.isfinite(shares)
    if views_col in indexed.columns:
        views = (
            pd.to_numeric(indexed[views_col], errors="coerce")
            .reindex(title_ids)
            .to_numpy(dtype=np.float64, na_value=np.nan)
        )
        has_views &= np.nan_to_num(views, nan=0.0) > 0
    return shares, has_views


def _bin_edges(finite_shares: np.ndarray, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` uniform edges over the range of the finite log shares.

    A degenerate range (one distinct value, or none) gets a unit-wide range so that every edge is distinct.
    """
    if finite_shares.size == 0:
        low, high = -1.0, 0.0  # no title was watched: any edges will do, no title falls in a bin
    else:
        low, high = float(finite_shares.min()), float(finite_shares.max())
        if high <= low:
            high = low + 1.0
    return np.linspace(low, high, n_bins + 1)


def popularity_bin(shares: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index in ``[0, len(edges) - 2]`` of each finite share; values outside the edges go to the end bins.

    Bin ``k`` is ``[edges[k], edges[k + 1])``, the last one closed on the right.
    """
    return np.searchsorted(edges[1:-1], shares, side="right")


def popularity_edges(vocabulary: pd.DataFrame, name: str) -> np.ndarray:
    """The fitted bin edges of popularity field ``name`` (``POPULARITY_2Y`` or ``POPULARITY_60D``)."""
    rows = vocabulary[(vocabulary["field"] == name) & (vocabulary["value"] != NO_VIEWS)]
    if rows.empty:
        raise KeyError(f"the vocabulary has no popularity field {name!r}")
    return np.concatenate([rows["lower"].to_numpy(dtype=np.float64), rows["upper"].to_numpy(dtype=np.float64)[-1:]])


# --------------------------------------------------------------------------------------------------------------------
# Fit and encode


def fit_vocabulary(
    titles: pd.DataFrame,
    config: CategoricalConfig = CategoricalConfig(),
    *,
    popularity: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The column vocabulary: a DataFrame ``field, value, column, lower, upper`` with one row per vector column.

    ``column`` runs 0..width-1 in the block order of :data:`FIELDS`, values sorted within a block (actors, directors
    and tags by descending frequency, then name). ``lower``/``upper`` are the bin edges of popularity bins and NaN
    elsewhere. ``popularity`` (the *training* popularity, as of the end of the training history window) fixes the bin
    edges; it is required unless ``config.popularity_bins == 0``.
    """
    if config.popularity_bins > 0 and popularity is None:
        raise ValueError(
            "fit_vocabulary needs the training popularity frame to fit the popularity bin edges "
            "(or set popularity_bins=0 to leave popularity out)"
        )
    records: list[tuple[str, str, float, float]] = []
    for name in FIELDS:
        if name in POPULARITY_SHARE_COLUMNS:
            if config.popularity_bins == 0:
                continue
            shares, has_views = _popularity_shares(titles, popularity, name)
            edges = _bin_edges(shares[has_views], config.popularity_bins)
            width = len(str(config.popularity_bins - 1))
            for k in range(config.popularity_bins):
                records.append((name, f"bin_{k:0{width}d}", float(edges[k]), float(edges[k + 1])))
            records.append((name, NO_VIEWS, math.nan, math.nan))
            continue
        _, names = _field_pairs(titles, name, config)
        if name == ACTOR:
            values = _top_n(names, config.top_n_actors)
        elif name == DIRECTOR:
            values = _top_n(names, config.top_n_directors)
        elif name == TAG:
            values = _top_n(names, config.top_n_tags)
        elif name == RELEASE_YEAR:
            # Sort buckets by their starting year, not as strings ("999" < "1000").
            values = sorted(set(names), key=lambda label: int(label.split("-")[0]))
        else:
            values = sorted(set(names))
        records.extend((name, value, math.nan, math.nan) for value in values)
    vocabulary = pd.DataFrame.from_records(records, columns=["field", "value", "lower", "upper"])
    vocabulary.insert(2, "column", np.arange(len(vocabulary), dtype=np.int64))
    return vocabulary.astype({"field": str, "value": str, "lower": np.float64, "upper": np.float64})[
        list(VOCABULARY_COLUMNS)
    ]


def encode(
    titles: pd.DataFrame,
    popularity: pd.DataFrame | None,
    vocabulary: pd.DataFrame,
    config: CategoricalConfig = CategoricalConfig(),
) -> SparseRows:
    """Multi-hot rows, one per row of ``titles`` (same order), against a fitted ``vocabulary``.

    ``popularity`` is the popularity as of the end of the history window these features serve (training: X,
    scoring: X'); the bin edges come from the vocabulary. Values unknown to the vocabulary are dropped and counted.
    ``config`` must be the one the vocabulary was fitted with (it decides the release-year buckets).
    """
    columns = {(f, v): int(c) for f, v, c in zip(vocabulary["field"], vocabulary["value"], vocabulary["column"])}
    fields_present = set(vocabulary["field"].unique())
    n = len(titles)
    all_rows: list[np.ndarray] = []
    all_cols: list[np.ndarray] = []
    dropped: dict[str, int] = {}
    clipped: dict[str, int] = {}
    for name in FIELDS:
        if name not in fields_present:
            continue
        if name in POPULARITY_SHARE_COLUMNS:
            if popularity is None:
                raise ValueError(f"the vocabulary has popularity field {name!r}: encode needs a popularity frame")
            edges = popularity_edges(vocabulary, name)
            shares, has_views = _popularity_shares(titles, popularity, name)
            bins = popularity_bin(shares[has_views], edges)
            clipped[name] = int(np.count_nonzero((shares[has_views] < edges[0]) | (shares[has_views] > edges[-1])))
            first = columns[(name, vocabulary.loc[vocabulary["field"] == name, "value"].iloc[0])]
            cols = np.where(has_views, 0, columns[(name, NO_VIEWS)])
            cols[has_views] = first + bins
            all_rows.append(np.arange(n, dtype=np.int64))
            all_cols.append(cols.astype(np.int64))
            continue
        rows, names = _field_pairs(titles, name, config)
        cols = np.fromiter((columns.get((name, v), -1) for v in names), dtype=np.int64, count=len(names))
        known = cols >= 0
        dropped[name] = int(np.count_nonzero(~known))
        all_rows.append(rows[known])
        all_cols.append(cols[known])
    rows = np.concatenate(all_rows) if all_rows else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(all_cols) if all_cols else np.zeros(0, dtype=np.int64)
    # Sort by (row, column); dropping repeats is a safety net (list cells are already de-duplicated).
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols = rows[keep], cols[keep]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return SparseRows(
        title_ids=titles["title_id"].to_numpy(dtype=np.int64),
        offsets=offsets,
        indices=cols.astype(np.int32),
        width=len(vocabulary),
        dropped=dropped,
        clipped=clipped,
    )


# --------------------------------------------------------------------------------------------------------------------
# Metadata helpers


def interaction_columns(vocabulary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(popularity bin columns, ``no_views`` columns): what interactions set, and what a title without any has."""
    popular = vocabulary[vocabulary["field"].astype(str).str.startswith("popularity")]
    no_views = (popular["value"].astype(str) == NO_VIEWS).to_numpy()
    columns = popular["column"].to_numpy(dtype=np.int64)
    return columns[~no_views], columns[no_views]


def column_names(vocabulary: pd.DataFrame) -> list[str]:
    """``"field=value"`` for every column, in column order."""
    return [f"{f}={v}" for f, v in zip(vocabulary["field"], vocabulary["value"])]


def vector_width(vocabulary: pd.DataFrame) -> int:
    return len(vocabulary)


def vocabulary_sizes(vocabulary: pd.DataFrame) -> dict[str, int]:
    """Number of columns per field, in block order (popularity sizes include the ``no_views`` column)."""
    counts = vocabulary["field"].value_counts()
    return {name: int(counts[name]) for name in FIELDS if name in counts.index}


def nonzeros_per_title(rows: SparseRows) -> dict[str, float]:
    """Mean, min and max number of ones per title (all 0 for an empty frame)."""
    nnz = rows.nnz_per_row()
    if nnz.size == 0:
        return {"mean": 0.0, "min": 0, "max": 0}
    return {"mean": float(nnz.mean()), "min": int(nnz.min()), "max": int(nnz.max())}


def describe(vocabulary: pd.DataFrame, rows: SparseRows) -> dict[str, object]:
    """Everything an asset would put in its metadata: sizes per field, width, non-zeros per title, drops."""
    return {
        "width": vector_width(vocabulary),
        "vocabulary_sizes": vocabulary_sizes(vocabulary),
        "nonzeros_per_title": nonzeros_per_title(rows),
        "dropped_unknown": dict(rows.dropped),
        "popularity_clipped": dict(rows.clipped),
        "n_titles": rows.n_rows,
    }
