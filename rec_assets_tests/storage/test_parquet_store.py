"""The Parquet table store: the same split as the DuckDB file, partition files replaced whole, no lock.

The split of the hand-made week of ``rec_assets_tests/split/test_split_models.py`` is computed once in a
DuckDB database and once in a Parquet store on a temporary path; every table, every loader query and every
data test must give the same rows, and every model the same content hash (its data version).
"""

from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from rec_assets.sqlmodels.runner import ANALYSES_DIR, TESTS_DIR, discover_models, discover_queries, materialize_partition, query
from rec_assets.sources.frames import tags_frame
from rec_assets.split.windows import week_windows
from rec_assets.storage.parquet import TableStore, is_duckdb_store, partition_key
from rec_assets.storage.tables import (
    record_rejected, replace_events, replace_title_tags, replace_titles, replace_users, replace_week_rows,
)
from rec_assets_tests.split.test_split_models import EVENTS, LENGTHS, SQL_DIR, TITLES, WEEK

MODEL_TABLES = ["split_windows", "cold_start_titles", "title_popularity", "week_titles"]
RAW_TABLES = ["raw_titles", "raw_watch_events", "raw_title_tags"]


def titles_frame() -> pd.DataFrame:
    return pd.DataFrame([
        {"title_id": i, "title": f"t{i}", "category": c, "genres": [], "subgenres": [], "actors": [],
         "directors": [], "maturity_rating": None, "country": None, "release_year": 2020,
         "acquisition_date": date.fromisoformat(a), "synopsis": None, "image": None}
        for i, c, a in TITLES
    ])


def events_frame() -> pd.DataFrame:
    return pd.DataFrame(EVENTS, columns=["user_id", "title_id", "ts"]).assign(ts=lambda f: pd.to_datetime(f.ts))


def tags() -> pd.DataFrame:
    return tags_frame([1, 1, 2, 5], ["noir", "noir", "heist", "later"],
                      [datetime(2025, 2, 1, 10), datetime(2025, 2, 26), datetime(2025, 1, 30), datetime(2025, 3, 1)])


def split_week(conn) -> dict[str, str]:
    """Load the hand-made raw tables and materialise the week's models; the content hash of each model."""
    replace_titles(conn, titles_frame())
    replace_events(conn, events_frame(), None, None)
    replace_title_tags(conn, tags())
    replace_users(conn, pd.DataFrame({"user_id": pd.Series([1, 2], dtype="int64"),
                                                "country": pd.Series(["IE", None], dtype="object")}))
    models = discover_models(SQL_DIR, sources=["raw_watch_events", "raw_titles", "raw_users"])
    start = datetime.combine(WEEK, datetime.min.time())
    values = week_windows(start, start + pd.Timedelta(days=7), LENGTHS).as_sql_parameters()
    from rec_assets.sqlmodels.runner import topological_order

    return {name: materialize_partition(conn, models[name], values).content_hash for name in topological_order(models)}


def snapshot(conn) -> dict[str, list]:
    tables = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in RAW_TABLES + MODEL_TABLES}
    types = {t: [r[:2] for r in conn.execute(f'DESCRIBE "{t}"').fetchall()] for t in RAW_TABLES + MODEL_TABLES}
    loaders = {
        name: query(conn, q, {**week_windows(datetime.combine(WEEK, datetime.min.time()),
                                             datetime.combine(WEEK, datetime.min.time()) + pd.Timedelta(days=7),
                                             LENGTHS).as_sql_parameters(),
                              "scoring_week": WEEK, "context": "train", "window_start": datetime(2025, 1, 1),
                              "window_end": datetime(2025, 4, 1), "tags_before": datetime(2025, 2, 24),
                              # raw_events_expectations: the ingestion range and the timestamp bounds
                              "range_start": datetime(2025, 1, 1), "range_end": datetime(2025, 4, 1),
                              "earliest": None, "latest": datetime(2025, 4, 1)}).fetchall()
        for name, q in discover_queries(SQL_DIR, ANALYSES_DIR).items()
    }
    tests = {name: query(conn, q, {"scoring_week": WEEK}).fetchall()
             for name, q in discover_queries(SQL_DIR, TESTS_DIR).items()}
    return {"tables": tables, "types": types, "loaders": loaders, "tests": tests}


@pytest.fixture()
def store(tmp_path) -> TableStore:
    return TableStore.from_setting(str(tmp_path / "tables"))


def test_the_split_of_a_hand_made_week_is_identical_in_both_stores(store):
    with duckdb.connect() as conn:
        duck_hashes = split_week(conn)
        duck = snapshot(conn)
    with store.connect() as conn:
        parquet_hashes = split_week(conn)
    with store.connect() as conn:  # a fresh reader sees only what is on disk
        parquet = snapshot(conn)
    assert parquet_hashes == duck_hashes
    assert parquet["types"] == duck["types"]
    assert parquet["tables"] == duck["tables"]
    assert parquet["loaders"] == duck["loaders"]
    # Before 02-24: one application each; title 1's second and title 5 (not available that week) stay out.
    assert parquet["loaders"]["week_title_tags"] == [(1, "noir", 1), (2, "heist", 1)]
    assert parquet["tests"] == duck["tests"] and all(rows == [] for rows in parquet["tests"].values())


def test_every_table_is_parquet_files_per_partition(store):
    with store.connect() as conn:
        split_week(conn)
    root = store.location
    files = sorted(str(p.relative_to(root)) for p in __import__("pathlib").Path(root).rglob("*") if p.is_file())
    assert "raw_titles/part-0.parquet" in files
    assert "raw_title_tags/part-0.parquet" in files
    assert {f for f in files if f.startswith("raw_watch_events/")} == {
        "raw_watch_events/event_week=2024-11-25/part-0.parquet", "raw_watch_events/event_week=2025-01-27/part-0.parquet",
        "raw_watch_events/event_week=2025-02-17/part-0.parquet", "raw_watch_events/event_week=2025-02-24/part-0.parquet",
        "raw_watch_events/event_week=2025-03-03/part-0.parquet", "raw_watch_events/event_week=2025-03-10/part-0.parquet",
    }
    for table in MODEL_TABLES:
        assert f"{table}/scoring_week=2025-03-03/part-0.parquet" in files
    assert not any(f.endswith(".tmp") for f in files), "no temporary file is left behind"
    assert not list(__import__("pathlib").Path(root).rglob("*.duckdb"))


def test_rerunning_a_week_replaces_only_its_partition(store):
    models = discover_models(SQL_DIR, sources=["raw_watch_events", "raw_titles", "raw_users"])
    with store.connect() as conn:
        split_week(conn)
        other = date(2025, 3, 10)
        start = datetime.combine(other, datetime.min.time())
        values = week_windows(start, start + pd.Timedelta(days=7), LENGTHS).as_sql_parameters()
        materialize_partition(conn, models["split_windows"], values)
        again = materialize_partition(conn, models["split_windows"], values)
        assert again.rows_replaced == 4 and again.rows_inserted == 4
        weeks = conn.execute("SELECT scoring_week, count(*) FROM split_windows GROUP BY ALL ORDER BY ALL").fetchall()
    assert weeks == [(WEEK, 4), (other, 4)]


def test_replacing_an_event_range_keeps_the_rest_of_a_partly_covered_week(store):
    with store.connect() as conn:
        replace_events(conn, events_frame(), None, None)
        # replace [03-05, 03-07): inside event week 2025-03-03, whose other events must stay
        new = pd.DataFrame([(9, 1, pd.Timestamp("2025-03-06 12:00"))], columns=["user_id", "title_id", "ts"])
        deleted, inserted = replace_events(conn, new, datetime(2025, 3, 5), datetime(2025, 3, 7))
        rows = conn.execute("SELECT user_id, title_id, ts::VARCHAR FROM raw_watch_events"
                            " WHERE event_week = DATE '2025-03-03' ORDER BY ts").fetchall()
    assert (deleted, inserted) == (2, 1)
    assert rows == [(1, 3, "2025-03-04 10:00:00"), (9, 1, "2025-03-06 12:00:00")]
    with duckdb.connect() as conn:  # the DuckDB file does the same
        replace_events(conn, events_frame(), None, None)
        assert replace_events(conn, new, datetime(2025, 3, 5), datetime(2025, 3, 7)) == (2, 1)


def test_replacing_a_whole_week_with_no_events_empties_it(store):
    with store.connect() as conn:
        replace_events(conn, events_frame(), None, None)
        empty = events_frame().iloc[:0]
        deleted, inserted = replace_events(conn, empty, datetime(2025, 3, 3), datetime(2025, 3, 10))
        left = conn.execute("SELECT count(*) FROM raw_watch_events WHERE event_week = DATE '2025-03-03'").fetchone()[0]
    assert (deleted, inserted, left) == (3, 0, 0)


def test_rejected_rows_are_a_set_and_writers_never_overwrite_each_other(store):
    rejected = pd.DataFrame({"file": ["events.csv", "events.csv"], "line": [5, 6], "reason": ["bad", "dup"],
                             "raw": ["x", "y"]})
    with store.connect() as conn:
        record_rejected(conn, "events", rejected)
        record_rejected(conn, "events", rejected)  # seen again: stored once
        record_rejected(conn, "titles", rejected.head(1))
        rows = conn.execute("SELECT kind, source_file, line, reason FROM rejected_rows ORDER BY ALL").fetchall()
    assert rows == [("events", "events.csv", 5, "bad"), ("events", "events.csv", 6, "dup"),
                    ("titles", "events.csv", 5, "bad")]


def test_week_rows_of_result_tables_are_replaced_by_week(store):
    frame = pd.DataFrame({"scoring_week": [WEEK, WEEK], "user_id": [1, 2], "score": [0.5, 0.25]})
    with store.connect() as conn:
        assert replace_week_rows(conn, "weekly_recommendations", "2025-03-03", frame) == (0, 2)
        assert replace_week_rows(conn, "weekly_recommendations", "2025-03-03", frame.head(1)) == (2, 1)
        with pytest.raises(ValueError, match="not of scoring week"):
            replace_week_rows(conn, "weekly_recommendations", "2025-03-10", frame)
        assert conn.execute("SELECT count(*) FROM weekly_recommendations").fetchone()[0] == 1


def test_changed_model_columns_retire_the_other_weeks(store, tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "daily.sql").write_text("SELECT $scoring_week::DATE AS scoring_week, 1 AS n")
    with store.connect() as conn:
        for week in (date(2025, 3, 3), date(2025, 3, 10)):
            materialize_partition(conn, discover_models(models_dir)["daily"], {"scoring_week": week})
        (models_dir / "daily.sql").write_text("SELECT $scoring_week::DATE AS scoring_week, 1 AS n, 2 AS m")
        result = materialize_partition(conn, discover_models(models_dir)["daily"], {"scoring_week": date(2025, 3, 3)})
        rows = conn.execute("SELECT * FROM daily").fetchall()
    assert result.recreated_table and result.rows_replaced == 0
    assert rows == [(date(2025, 3, 3), 1, 2)]


def test_locations_are_checked():
    assert is_duckdb_store("") and is_duckdb_store("duckdb")
    assert TableStore.from_setting("s3://bucket/rec/tables/").location == "s3://bucket/rec/tables"
    assert TableStore.from_setting("s3://bucket/rec").partition_uri("split_windows", "scoring_week",
                                                                             date(2025, 3, 3)) == \
        "s3://bucket/rec/split_windows/scoring_week=2025-03-03/part-0.parquet"
    with pytest.raises(ValueError, match="hive partition"):
        TableStore.from_setting("s3://bucket/env=prod")
    with pytest.raises(ValueError):
        TableStore.from_setting("gopher://x")
    with pytest.raises(ValueError):
        partition_key("2025/03")
