"""A small synthetic scoring week (train and score phases) with the shapes ``datasets.load_week`` returns.

60 titles (every third is TV; the last 6 are the week's cold-start titles), 48 users in 3 taste groups; title
``t`` belongs to group ``t % 3``, and users watch titles of their own group 80% of the time, so a collaborative
or feature model can beat random. Categorical columns: 0-2 group, 3-4 type, 5-7 popularity bins, 8 ``no_views``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rec_assets.model.inputs import WeekData
from rec_assets.model.data import Interactions, ItemFeatures, UserData

N_TITLES, N_USERS, N_COLD = 60, 48, 6
POPULARITY_BINS, NO_VIEWS = (5, 6, 7), 8
VOCABULARY = pd.DataFrame({
    "field": ["group"] * 3 + ["type"] * 2 + ["popularity_2y"] * 4,
    "value": ["g0", "g1", "g2", "movie", "tv", "bin_0", "bin_1", "bin_2", "no_views"],
    "column": np.arange(9),
})


def _csr_rows(per_row: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(per_row) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in per_row], out=offsets[1:])
    items = np.asarray([i for r in per_row for i in r], dtype=np.int64)
    return offsets, items


def _pairs(per_user: list[list[int]]) -> Interactions:
    pairs = sorted({(u, t) for u, titles in enumerate(per_user) for t in titles})
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return Interactions(arr[:, 0].copy(), arr[:, 1].copy())


def synthetic_week(seed: int = 0) -> tuple[WeekData, WeekData]:
    rng = np.random.default_rng(seed)
    titles = np.arange(N_TITLES)
    is_tv = titles % 3 == 2
    cold = titles >= N_TITLES - N_COLD
    group = titles % 3
    user_group = np.arange(N_USERS) % 3

    def draw(u: int, n: int, pool: np.ndarray, avoid: set[int]) -> list[int]:
        out = []
        while len(out) < n:
            own = rng.random() < 0.8
            candidates = [t for t in pool if (group[t] == user_group[u]) == own and t not in avoid and t not in out]
            if candidates:
                out.append(int(rng.choice(candidates)))
        return out

    warm_pool = titles[~cold]
    x = [draw(u, 8, warm_pool, set()) for u in range(N_USERS)]
    y = [draw(u, 2, warm_pool, set(x[u])) for u in range(N_USERS)]
    # X' drops the two oldest X watches and adds Y: the history window slides by the label length.
    xp = [x[u][2:] + y[u] for u in range(N_USERS)]
    yp = [draw(u, 1, warm_pool, set(xp[u])) + draw(u, 1, titles[cold], set()) for u in range(N_USERS)]
    yp = [w + ([x[u][0]] if u % 5 == 0 else []) for u, w in enumerate(yp)]  # a re-watch now and then

    def categorical(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bins = np.digitize(counts, [1, 6, 12])  # 0 = no views, 1..3 = bins
        rows = [[int(group[t]), 3 + int(is_tv[t]), (POPULARITY_BINS[bins[t] - 1] if bins[t] else NO_VIEWS)]
                for t in titles]
        return _csr_rows([sorted(r) for r in rows])

    synopsis = rng.normal(size=(N_TITLES, 8)).astype(np.float32)
    synopsis[:, 0] += 2.0 * group  # the synopsis knows the group too
    cover = rng.normal(size=(N_TITLES, 4)).astype(np.float32)
    codes = np.stack([user_group + 1, rng.integers(0, 3, N_USERS)], axis=1).astype(np.int64)
    catalogue = pd.DataFrame({
        "title_id": titles + 100, "category": np.where(is_tv, "tv", "movie"), "is_warm": ~cold,
        "is_cold_start": cold, "id_known": ~cold, "watched_in_week": False,
    })

    def phase(history: list[list[int]], labels: list[list[int]]) -> WeekData:
        offsets, items_ = _csr_rows(history)
        counts = np.bincount(items_, minlength=N_TITLES).astype(np.int64)
        cat_offsets, cat_indices = categorical(counts)
        features = ItemFeatures(
            title_ids=catalogue["title_id"].to_numpy(np.int64), is_tv=is_tv, categorical_offsets=cat_offsets,
            categorical_indices=cat_indices, categorical_width=9, synopsis=synopsis,
            synopsis_missing=np.zeros(N_TITLES, bool), cover_art=cover, cover_art_missing=np.zeros(N_TITLES, bool),
            id_known=~cold,
        )
        users = UserData(np.arange(N_USERS, dtype=np.int64) + 1000, codes, [3, 2], offsets, items_)
        features.validate()
        users.validate(N_TITLES)
        return WeekData(catalogue=catalogue, items=features, users=users, labels=_pairs(labels),
                        history_counts=counts)

    return phase(x, y), phase(xp, yp)
