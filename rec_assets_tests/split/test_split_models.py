"""The split's SQL models on a hand-made event set, with every expected row worked out by hand.

Windows (history 28 days, labels 7, recent popularity 14) for the scoring week W = 2025-03-03:
    X  = [01-27, 02-24)   Y  = [02-24, 03-03)   X' = [02-03, 03-03)   Y' = [03-03, 03-10)
"""

from datetime import date, datetime
from math import log
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from rec_assets.storage.tables import replace_events, replace_titles
from rec_assets.split.windows import WindowLengths, week_windows
from rec_assets.sqlmodels.runner import TESTS_DIR, discover_models, discover_queries, materialize_partition, query, topological_order

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
WEEK = date(2025, 3, 3)
LENGTHS = WindowLengths(history_days=28, label_days=7, recent_popularity_days=14)

EVENTS = [  # user, title, timestamp                         windows
    (1, 1, "2025-02-01 10:00"),  # X
    (1, 2, "2025-02-25 10:00"),  # Y, X'
    (1, 3, "2025-03-04 10:00"),  # Y'
    (1, 3, "2025-03-10 00:00"),  # the next week (Y' is half-open)
    (2, 1, "2025-01-28 10:00"),  # X only (before X' starts)
    (2, 6, "2024-12-01 10:00"),  # before every window
    (2, 6, "2025-03-05 10:00"),  # Y'
    (2, 2, "2025-02-21 10:00"),  # X, X'
    (3, 2, "2025-03-01 10:00"),  # Y, X'
    (3, 1, "2025-03-06 10:00"),  # Y'
    (3, 1, "2025-02-20 10:00"),  # X, X'
]

TITLES = [  # id, category, acquisition
    (1, "movie", "2025-01-01"),
    (2, "tv", "2025-01-01"),
    (3, "movie", "2025-03-04"),  # arrives in the week and is watched: cold-start
    (4, "movie", "2025-03-05"),  # arrives in the week, unwatched: available, neither warm nor cold
    (5, "movie", "2025-03-20"),  # arrives later: not available in the week
    (6, "movie", "2024-11-01"),  # watched only before the windows and in Y': cold by the paper's definition
]


def hand_made_warehouse() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    titles = pd.DataFrame(
        [
            {"title_id": i, "title": f"t{i}", "category": c, "genres": [], "subgenres": [], "actors": [],
             "directors": [], "maturity_rating": None, "country": None, "release_year": 2020,
             "acquisition_date": date.fromisoformat(a), "synopsis": None, "image": None}
            for i, c, a in TITLES
        ]
    )
    replace_titles(conn, titles)
    events = pd.DataFrame(EVENTS, columns=["user_id", "title_id", "ts"]).assign(ts=lambda f: pd.to_datetime(f.ts))
    replace_events(conn, events, None, None)
    return conn


def materialize_week(conn, week: date = WEEK) -> dict:
    models = discover_models(SQL_DIR, sources=["raw_watch_events", "raw_titles", "raw_users"])
    start = datetime.combine(week, datetime.min.time())
    values = week_windows(start, start + pd.Timedelta(days=7), LENGTHS).as_sql_parameters()
    for name in topological_order(models):
        materialize_partition(conn, models[name], values)
    return values


@pytest.fixture()
def conn():
    connection = hand_made_warehouse()
    materialize_week(connection)
    yield connection
    connection.close()


def test_split_windows_count_the_events_of_each_window(conn):
    rows = conn.execute(
        "SELECT window_name, window_start::DATE, window_end::DATE, events, users, titles FROM split_windows"
        " WHERE scoring_week = $w ORDER BY window_name", {"w": WEEK}
    ).fetchall()
    assert rows == [
        ("X", date(2025, 1, 27), date(2025, 2, 24), 4, 3, 2),
        ("X_prime", date(2025, 2, 3), date(2025, 3, 3), 4, 3, 2),
        ("Y", date(2025, 2, 24), date(2025, 3, 3), 2, 2, 1),
        ("Y_prime", date(2025, 3, 3), date(2025, 3, 10), 3, 3, 3),
    ]


def test_cold_start_titles_have_a_label_watch_and_no_history(conn):
    rows = conn.execute(
        "SELECT title_id, category, label_watches FROM cold_start_titles WHERE scoring_week = $w ORDER BY title_id",
        {"w": WEEK},
    ).fetchall()
    assert rows == [(3, "movie", 1), (6, "movie", 1)]


def test_week_titles_are_the_available_catalogue_with_warm_cold_and_id_flags(conn):
    rows = conn.execute(
        "SELECT title_id, is_warm, is_cold_start, id_known, watched_in_week FROM week_titles"
        " WHERE scoring_week = $w ORDER BY title_id", {"w": WEEK}
    ).fetchall()
    assert rows == [
        (1, True, False, True, True),
        (2, True, False, True, False),
        (3, False, True, False, True),
        (4, False, False, False, False),
        (6, False, True, False, True),
    ]


def test_popularity_is_computed_as_of_the_end_of_each_history_window(conn):
    rows = conn.execute(
        "SELECT context, title_id, views_long, views_recent, share_long_log, share_recent_log FROM title_popularity"
        " WHERE scoring_week = $w ORDER BY context DESC, title_id", {"w": WEEK}
    ).fetchall()
    expected = [
        ("train", 1, 3, 1, log(3 / 4), log(1 / 2)),
        ("train", 2, 1, 1, log(1 / 4), log(1 / 2)),
        ("score", 1, 1, 1, log(1 / 4), log(1 / 4)),
        ("score", 2, 3, 3, log(3 / 4), log(3 / 4)),
    ]
    assert [r[:4] for r in rows] == [e[:4] for e in expected]
    for row, want in zip(rows, expected):
        assert row[4] == pytest.approx(want[4]) and row[5] == pytest.approx(want[5])


def test_the_data_tests_pass_on_a_correct_split(conn):
    values = {"scoring_week": WEEK}
    for test in discover_queries(SQL_DIR, TESTS_DIR).values():
        assert query(conn, test, values).fetchall() == [], test.name


def test_label_window_check_catches_an_overlap_with_training(conn):
    conn.execute("UPDATE split_windows SET window_end = TIMESTAMP '2025-03-05' WHERE window_name = 'Y'")
    test = discover_queries(SQL_DIR, TESTS_DIR)["split_label_window_disjoint_from_training"]
    problems = query(conn, test, {"scoring_week": WEEK}).df()
    assert problems.problem.value_counts().to_dict() == {"overlapping windows": 1, "event in Y' and a training window": 1}
    assert problems.dropna().title_id.tolist() == [3]


def test_cold_start_check_catches_a_title_with_history(conn):
    conn.execute("INSERT INTO cold_start_titles BY NAME SELECT DATE '2025-03-03' AS scoring_week, 2 AS title_id")
    test = discover_queries(SQL_DIR, TESTS_DIR)["cold_start_titles_have_no_history"]
    rows = query(conn, test, {"scoring_week": WEEK}).fetchall()
    assert rows == [(2, 3, 0)]  # three watches of title 2 in X, Y and X', none in Y'


def test_rematerialising_a_week_gives_identical_tables(conn):
    before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
              for t in ("split_windows", "cold_start_titles", "title_popularity", "week_titles")}
    materialize_week(conn)
    after = {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in before}
    assert after == before
