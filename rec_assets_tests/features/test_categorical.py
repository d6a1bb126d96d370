"""Categorical multi-hot features: known answers on a three-title catalogue."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from rec_assets.features.categorical import (
    CategoricalConfig,
    column_names,
    describe,
    encode,
    fit_vocabulary,
    popularity_edges,
    vocabulary_sizes,
)


def make_titles(rows: list[dict]) -> pd.DataFrame:
    defaults = {
        "title": "",
        "category": "movie",
        "genres": [],
        "subgenres": [],
        "actors": [],
        "directors": [],
        "maturity_rating": None,
        "country": None,
        "release_year": None,
        "acquisition_date": None,
        "synopsis": None,
        "image": None,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["title_id"] = frame["title_id"].astype("int64")
    frame["release_year"] = frame["release_year"].astype("Int64")
    return frame


CATALOGUE = make_titles(
    [
        dict(title_id=1, genres=["Drama", "Comedy"], subgenres=["Satire"], actors=["Ann", "Bob"], directors=["Dee"],
             maturity_rating="PG", country="FR", release_year=1999, acquisition_date=dt.date(2024, 3, 15)),
        dict(title_id=2, category="tv", genres=["Drama"], actors=["Bob", "Cal"], directors=["Dee", "Eve"],
             maturity_rating="R"),
        dict(title_id=3, subgenres=["Satire", "Noir"], actors=["Cal", "Ann", "Bob"], maturity_rating="PG",
             country="US", release_year=2001, acquisition_date=dt.date(2024, 4, 1)),
    ]
)

# Training popularity as of the end of X. Title 3 is absent (never watched); title 2 had no recent views.
TRAIN_POPULARITY = pd.DataFrame(
    {
        "title_id": [1, 2],
        "views_long": [100, 10],
        "views_recent": [7, 0],
        "share_long_log": [-2.0, -4.0],
        "share_recent_log": [-1.0, -math.inf],
    }
)

# Top-2 actors: Bob (3 titles), then Ann and Cal tie at 2 and the name decides: Ann. Top-1 director: Dee (2 titles).
CONFIG = CategoricalConfig(top_n_actors=2, top_n_directors=1, popularity_bins=2)

EXPECTED_NAMES = [
    "genre=Comedy", "genre=Drama",  # 0 1
    "subgenre=Noir", "subgenre=Satire",  # 2 3
    "actor=Bob", "actor=Ann",  # 4 5: by frequency, not by name
    "director=Dee",  # 6
    "maturity_rating=PG", "maturity_rating=R",  # 7 8
    "country=FR", "country=US",  # 9 10
    "release_year=1999", "release_year=2001",  # 11 12
    "acquisition_month=2024-03", "acquisition_month=2024-04",  # 13 14
    "popularity_2y=bin_0", "popularity_2y=bin_1", "popularity_2y=no_views",  # 15 16 17
    "popularity_60d=bin_0", "popularity_60d=bin_1", "popularity_60d=no_views",  # 18 19 20
]


@pytest.fixture(scope="module")
def vocabulary() -> pd.DataFrame:
    return fit_vocabulary(CATALOGUE, CONFIG, popularity=TRAIN_POPULARITY)


def test_vocabulary_names_every_column_in_order(vocabulary):
    assert column_names(vocabulary) == EXPECTED_NAMES
    assert vocabulary["column"].tolist() == list(range(21))
    assert list(vocabulary.columns) == ["field", "value", "column", "lower", "upper"]
    assert vocabulary_sizes(vocabulary) == {
        "genre": 2, "subgenre": 2, "actor": 2, "director": 1, "maturity_rating": 2, "country": 2,
        "release_year": 2, "acquisition_month": 2, "popularity_2y": 3, "popularity_60d": 3,
    }


def test_vocabulary_is_deterministic_under_row_order(vocabulary):
    shuffled = CATALOGUE.iloc[[2, 0, 1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(fit_vocabulary(shuffled, CONFIG, popularity=TRAIN_POPULARITY), vocabulary)


def test_popularity_edges_are_uniform_over_the_training_log_share_range(vocabulary):
    # 2 years: finite shares -2 and -4 -> edges -4, -3, -2.
    np.testing.assert_allclose(popularity_edges(vocabulary, "popularity_2y"), [-4.0, -3.0, -2.0])
    # 60 days: a single finite share (-1) is a degenerate range, widened to one unit.
    np.testing.assert_allclose(popularity_edges(vocabulary, "popularity_60d"), [-1.0, -0.5, 0.0])


def test_encode_hand_made_titles(vocabulary):
    rows = encode(CATALOGUE, TRAIN_POPULARITY, vocabulary, CONFIG)
    assert rows.width == 21
    assert rows.title_ids.tolist() == [1, 2, 3]
    assert rows.offsets.dtype == np.int64 and rows.indices.dtype == np.int32
    # Title 1: -2.0 is the top edge (last bin is closed), -1.0 is the bottom of the 60-day range.
    assert rows.row(0).tolist() == [0, 1, 3, 4, 5, 6, 7, 9, 11, 13, 16, 18]
    # Title 2: Cal and Eve are past the top-N cut; no country, year or acquisition date; 0 recent views.
    assert rows.row(1).tolist() == [1, 4, 6, 8, 15, 20]
    # Title 3: Cal dropped; absent from the popularity frame -> no views in both periods.
    assert rows.row(2).tolist() == [2, 3, 4, 5, 7, 10, 12, 14, 17, 20]
    assert rows.offsets.tolist() == [0, 12, 18, 28]
    assert rows.dropped == {
        "genre": 0, "subgenre": 0, "actor": 2, "director": 1, "maturity_rating": 0, "country": 0,
        "release_year": 0, "acquisition_month": 0,
    }
    dense = rows.to_dense()
    assert dense.shape == (3, 21) and dense.sum() == 28
    assert describe(vocabulary, rows)["nonzeros_per_title"] == {"mean": 28 / 3, "min": 6, "max": 12}


def test_scoring_popularity_uses_training_edges_and_its_own_values(vocabulary):
    # Popularity as of the end of X': other values, same edges. Title 4 is a cold-start title nobody has watched,
    # with a genre and a year the vocabulary has never seen.
    scoring_titles = pd.concat(
        [CATALOGUE, make_titles([dict(title_id=4, genres=["Western"], release_year=2026, country="FR")])],
        ignore_index=True,
    )
    scoring_popularity = pd.DataFrame(
        {
            "title_id": [1, 2, 3],
            "views_long": [5, 50, 20],
            "views_recent": [3, 4, 0],
            "share_long_log": [-5.0, -2.9, -2.5],  # -5 is below the fitted range: clipped into bin 0
            "share_recent_log": [-0.75, -0.5, np.nan],
        }
    )
    rows = encode(scoring_titles, scoring_popularity, vocabulary, CONFIG)
    popularity_columns = [[c for c in rows.row(r).tolist() if c >= 15] for r in range(4)]
    assert popularity_columns == [[15, 18], [16, 19], [16, 20], [17, 20]]
    assert rows.clipped == {"popularity_2y": 1, "popularity_60d": 0}
    assert rows.row(3).tolist() == [9, 17, 20]  # country=FR, then no views twice; Western and 2026 dropped
    assert rows.dropped["genre"] == 1 and rows.dropped["release_year"] == 1


def test_release_year_buckets():
    config = CategoricalConfig(release_year_bucket=5, popularity_bins=0)
    vocabulary = fit_vocabulary(CATALOGUE, config)
    years = vocabulary.loc[vocabulary["field"] == "release_year", "value"].tolist()
    assert years == ["1995-1999", "2000-2004"]
    assert not (vocabulary["field"].str.startswith("popularity")).any()
    rows = encode(CATALOGUE, None, vocabulary, config)
    year_columns = vocabulary.loc[vocabulary["field"] == "release_year", "column"].tolist()
    assert year_columns[0] in rows.row(0) and year_columns[1] in rows.row(2)


def test_top_n_cut_keeps_the_most_frequent_then_by_name():
    titles = make_titles(
        [dict(title_id=i, actors=actors) for i, actors in enumerate([["Zed", "Yan"], ["Zed", "Xia"], ["Zed"], ["Abe"]])]
    )
    vocabulary = fit_vocabulary(titles, CategoricalConfig(top_n_actors=3, popularity_bins=0))
    assert vocabulary.loc[vocabulary["field"] == "actor", "value"].tolist() == ["Zed", "Abe", "Xia"]


def test_fit_needs_training_popularity_for_bins():
    with pytest.raises(ValueError, match="popularity"):
        fit_vocabulary(CATALOGUE, CONFIG)


def test_same_rows_after_a_parquet_round_trip(tmp_path, vocabulary):
    # Parquet gives list cells back as numpy arrays, years as nullable ints, dates as timestamps.
    path = tmp_path / "titles.parquet"
    frame = CATALOGUE.assign(acquisition_date=pd.to_datetime(CATALOGUE["acquisition_date"]))
    frame.to_parquet(path)
    round_tripped = pd.read_parquet(path)
    before = encode(CATALOGUE, TRAIN_POPULARITY, vocabulary, CONFIG)
    after = encode(round_tripped, TRAIN_POPULARITY, vocabulary, CONFIG)
    np.testing.assert_array_equal(after.indices, before.indices)
    np.testing.assert_array_equal(after.offsets, before.offsets)


# --- tags ------------------------------------------------------------------------------------------------------------

# Titles carrying each tag: noir 3, heist 2, twist 2, alpha 1 (applied five times, to one title: it counts once).
TAGGED = make_titles(
    [
        dict(title_id=1, directors=["Dee"], tags=["noir", "heist"], maturity_rating="PG"),
        dict(title_id=2, tags=["twist", "noir"]),
        dict(title_id=3, tags=["heist", "noir", "heist"]),
        dict(title_id=4, tags=["twist"]),
        dict(title_id=5, tags=["alpha"] * 5),
        dict(title_id=6, tags=None),
    ]
)


def tag_values(vocabulary: pd.DataFrame) -> list[str]:
    return vocabulary.loc[vocabulary["field"] == "tag", "value"].tolist()


def test_tag_vocabulary_is_the_top_n_by_titles_carrying_the_tag_ties_by_name():
    three = fit_vocabulary(TAGGED, CategoricalConfig(top_n_tags=3, popularity_bins=0))
    assert tag_values(three) == ["noir", "heist", "twist"]  # alpha, applied most often but to one title, is cut
    two = fit_vocabulary(TAGGED, CategoricalConfig(top_n_tags=2, popularity_bins=0))
    assert tag_values(two) == ["noir", "heist"]  # heist and twist tie at 2 titles: the name decides
    assert tag_values(fit_vocabulary(TAGGED, CategoricalConfig(top_n_tags=0, popularity_bins=0))) == []


def test_the_tag_block_follows_the_director_block_and_encodes_like_any_list_field():
    config = CategoricalConfig(top_n_tags=2, popularity_bins=0)
    vocabulary = fit_vocabulary(TAGGED, config)
    assert column_names(vocabulary) == ["director=Dee", "tag=noir", "tag=heist", "maturity_rating=PG"]
    rows = encode(TAGGED, None, vocabulary, config)
    assert [rows.row(r).tolist() for r in range(6)] == [[0, 1, 2, 3], [1], [1, 2], [], [], []]
    assert rows.dropped["tag"] == 3  # twist twice, alpha once: outside the vocabulary
    assert vocabulary_sizes(vocabulary)["tag"] == 2


def test_a_catalogue_without_tags_encodes_exactly_as_before_tags_existed(vocabulary):
    # No tags column, or one where no title has a tag: no tag column in the vocabulary, the same rows as always.
    for frame in (CATALOGUE, CATALOGUE.assign(tags=[[], None, []])):
        fitted = fit_vocabulary(frame, CONFIG, popularity=TRAIN_POPULARITY)
        assert column_names(fitted) == EXPECTED_NAMES
        rows = encode(frame, TRAIN_POPULARITY, fitted, CONFIG)
        assert [rows.row(r).tolist() for r in range(3)] == [
            [0, 1, 3, 4, 5, 6, 7, 9, 11, 13, 16, 18], [1, 4, 6, 8, 15, 20], [2, 3, 4, 5, 7, 10, 12, 14, 17, 20],
        ]
        assert "tag" not in rows.dropped
    # Titles encoded without a tags column against a vocabulary that has tags simply carry none.
    tagged_vocabulary = fit_vocabulary(TAGGED, CategoricalConfig(popularity_bins=0))
    untagged = encode(TAGGED.drop(columns="tags"), None, tagged_vocabulary, CategoricalConfig(popularity_bins=0))
    assert untagged.dropped["tag"] == 0 and untagged.row(0).tolist() == [0, 5]  # director=Dee, maturity_rating=PG


def test_top_n_tags_cannot_be_negative():
    with pytest.raises(ValueError, match="top_n_tags"):
        CategoricalConfig(top_n_tags=-1)
