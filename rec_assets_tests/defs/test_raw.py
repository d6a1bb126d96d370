"""Raw assets: bad rows are quarantined or stop ingestion, nothing stored is lost, re-runs are idempotent."""

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, materialize

from rec_assets.defs.raw import (
    CHECK_RAW_EVENTS_REJECTED_SHARE,
    raw_events_meet_expectations,
    raw_title_tags,
    raw_titles,
    raw_titles_meet_expectations,
    raw_users,
    raw_watch_events,
)
from rec_assets.defs.resources import SourceResource, WarehouseResource
from rec_assets.sources.canonical import CanonicalSource
from rec_assets.sources.frames import no_tags, tags_frame
from rec_assets.sources.protocol import TagsRead
from rec_assets.sources.rejects import Reason, Rejected, rejected_frame

WEEK = "2025-03-03"
TITLES = [
    {"title_id": 1, "title": "One", "category": "movie", "genres": ["Drama"], "subgenres": [], "actors": ["A"],
     "directors": ["D"], "maturity_rating": "PG", "country": "US", "release_year": 2001,
     "acquisition_date": "2024-01-01", "synopsis": "A story.", "image": None},
    {"title_id": 2, "title": "Two", "category": "tv", "genres": ["Comedy"], "subgenres": [], "actors": [],
     "directors": [], "maturity_rating": None, "country": None, "release_year": 2020,
     "acquisition_date": "2024-01-01", "synopsis": None, "image": None},
]
GOOD_EVENTS = ["1,1,2025-03-03T10:00:00Z", "2,2,2025-03-04T10:00:00Z", "1,2,2025-03-05T10:00:00Z"]


def write_source(directory: Path, event_lines: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "titles.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TITLES))
    (directory / "users.csv").write_text("user_id,country\n1,US\n2,FR\n")
    (directory / "events.csv").write_text("user_id,title_id,timestamp\n" + "".join(f"{line}\n" for line in event_lines))
    return directory


def ingest(source_dir: Path, db: Path, bad_rows: str = "quarantine", max_share: float = 0.01):
    resources = {
        "source": SourceResource(kind="canonical", data_dir=str(source_dir), bad_rows=bad_rows,
                                 max_rejected_share=max_share),
        "warehouse_db": WarehouseResource(database=str(db)),
    }
    return materialize([raw_titles, raw_users, raw_watch_events], resources=resources, partition_key=WEEK,
                       raise_on_error=False)


def stored_events(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("SELECT user_id, title_id, ts::VARCHAR FROM raw_watch_events ORDER BY ALL").fetchall()


def test_clean_events_are_stored_with_their_event_week(tmp_path):
    db = tmp_path / "w.duckdb"
    result = ingest(write_source(tmp_path / "src", GOOD_EVENTS), db)
    assert result.success
    assert len(stored_events(db)) == 3
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT DISTINCT event_week::VARCHAR FROM raw_watch_events").fetchall() == [(WEEK,)]


def test_bad_rows_are_quarantined_with_file_line_and_reason(tmp_path):
    db = tmp_path / "w.duckdb"
    lines = GOOD_EVENTS + ["x,1,2025-03-03T11:00:00Z", "1,99,2025-03-03T12:00:00Z", "1,1,2025-03-03T10:00:00Z"]
    result = ingest(write_source(tmp_path / "src", lines), db, max_share=0.9)
    assert result.success
    with duckdb.connect(str(db), read_only=True) as conn:
        rejected = conn.execute("SELECT source_file, line, reason FROM rejected_rows ORDER BY line").fetchall()
    assert rejected == [("events.csv", 5, "bad_user_id"), ("events.csv", 6, "unknown_title"),
                        ("events.csv", 7, "duplicate")]
    assert len(stored_events(db)) == 3


def test_more_than_the_allowed_share_of_rejected_rows_blocks_the_graph(tmp_path):
    lines = GOOD_EVENTS + ["1,1,not-a-time"]
    result = ingest(write_source(tmp_path / "src", lines), tmp_path / "w.duckdb", max_share=0.01)
    assert not result.success
    evaluation = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_RAW_EVENTS_REJECTED_SHARE]
    assert len(evaluation) == 1 and not evaluation[0].passed
    assert ("1 of 4 source event rows rejected, cascades from rejected titles included (25.00%); limit 1.00% "
            "(REC_MAX_REJECTED_SHARE)") == evaluation[0].description


def test_fail_mode_names_the_file_line_and_reason_and_keeps_what_was_stored(tmp_path):
    db = tmp_path / "w.duckdb"
    assert ingest(write_source(tmp_path / "src", GOOD_EVENTS), db).success
    before = stored_events(db)
    write_source(tmp_path / "src", GOOD_EVENTS[:1] + ["1,2,2025-13-45T00:00:00Z"])
    result = ingest(tmp_path / "src", db, bad_rows="fail")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    cause = error.cause.message if error.cause else error.message
    assert "events.csv line 3: timestamp '2025-13-45T00:00:00Z' does not parse" in cause
    assert stored_events(db) == before


def test_reingesting_a_week_is_idempotent(tmp_path):
    db = tmp_path / "w.duckdb"
    source = write_source(tmp_path / "src", GOOD_EVENTS)
    ingest(source, db)
    first = stored_events(db)
    ingest(source, db)
    assert stored_events(db) == first


def test_event_expectations_fail_on_events_of_unknown_titles(tmp_path):
    from rec_assets.quality.expectations import events_expectations, run_suite
    import pandas as pd

    from datetime import datetime

    from rec_assets.quality.expectations import epoch_us

    days = [datetime(2025, 3, 3), datetime(2025, 3, 3), datetime(2027, 3, 4)]
    events = pd.DataFrame({"user_id": [1, 1, None], "title_id": [1, 5, 1], "ts": [epoch_us(d) for d in days]})
    outcome = run_suite("events", events, events_expectations([1, 2], None, pd.Timestamp("2026-01-01").to_pydatetime()))
    assert not outcome.success
    described = outcome.describe()
    assert "expect_column_values_to_be_in_set(title_id): 1 of 3 rows" in described
    assert "expect_column_values_to_not_be_null(user_id): 1 of 3 rows" in described
    assert "expect_column_values_to_be_between(ts): 1 of 3 rows" in described  # an event after "now"


def test_title_expectations_fail_on_duplicate_ids_bad_categories_and_years():
    from datetime import datetime

    import pandas as pd

    from rec_assets.quality.expectations import run_suite, titles_expectations

    titles = pd.DataFrame({"title_id": [1, 1, 2], "category": ["movie", "film", "tv"], "release_year": [1999, 1700, 2000]})
    outcome = run_suite("titles", titles, titles_expectations(datetime(2026, 1, 1)))
    failed = {f.expectation: f.unexpected_count for f in outcome.failures}
    assert failed == {"expect_column_values_to_be_unique": 2, "expect_column_values_to_be_in_set": 1,
                      "expect_column_values_to_be_between": 1}


# --- tags ----------------------------------------------------------------------------------------------------------

TAG_APPLICATIONS = [(1, "noir", "2025-03-01T10:00:00+01:00"), (2, "heist", "2025-03-02T08:00:00Z"),
                    (99, "ghost", "2025-03-02T09:00:00Z")]


class TaggedSource(CanonicalSource):
    """The canonical source plus fixed tag applications, read as a source does: unknown titles are rejected."""

    applications = TAG_APPLICATIONS

    def read_tags(self, mode="quarantine", *, known_title_ids, bounds) -> TagsRead:
        if not self.applications:
            return no_tags()
        known = set(known_title_ids)
        kept = [a for a in self.applications if a[0] in known]
        rejected = rejected_frame(Rejected("tags.csv", line, Reason.UNKNOWN_TITLE, ",".join(map(str, a)))
                                  for line, a in enumerate(self.applications, start=2) if a[0] not in known)
        ids, tags, stamps = zip(*kept)
        return TagsRead(tags=tags_frame(ids, tags, [datetime.fromisoformat(s) for s in stamps]), rejected=rejected,
                        counts={"tags": len(kept), "rejected": len(rejected)})


class UntaggedSource(TaggedSource):
    applications = []


class FakeSourceResource(SourceResource):
    tagged: bool = True

    def open(self):
        return (TaggedSource if self.tagged else UntaggedSource)(Path(self.data_dir))


def ingest_tags(source_dir: Path, db: Path, tagged: bool = True):
    resources = {"source": FakeSourceResource(kind="canonical", data_dir=str(source_dir), tagged=tagged),
                 "warehouse_db": WarehouseResource(database=str(db))}
    return materialize([raw_titles, raw_title_tags], resources=resources, raise_on_error=False)


def test_tags_of_known_titles_are_stored_in_utc_and_the_rest_quarantined(tmp_path):
    db = tmp_path / "w.duckdb"
    result = ingest_tags(write_source(tmp_path / "src", GOOD_EVENTS), db)
    assert result.success
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT title_id, tag, ts::VARCHAR FROM raw_title_tags ORDER BY ALL").fetchall() == [
            (1, "noir", "2025-03-01 09:00:00"), (2, "heist", "2025-03-02 08:00:00")]
        assert conn.execute("SELECT kind, source_file, line, reason FROM rejected_rows").fetchall() == [
            ("tags", "tags.csv", 4, "unknown_title")]
    metadata = result.asset_materializations_for_node("raw_title_tags")[0].metadata
    assert (metadata["rows"].value, metadata["rejected_rows"].value, metadata["count_tags"].value) == (2, 1, 2)
    assert "tags.csv line 4: unknown_title" in metadata["rejected_preview"].value


def test_a_source_without_tags_replaces_the_snapshot_with_an_empty_table(tmp_path):
    db = tmp_path / "w.duckdb"
    source = write_source(tmp_path / "src", GOOD_EVENTS)
    assert ingest_tags(source, db).success
    assert ingest_tags(source, db, tagged=False).success
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw_title_tags").fetchone()[0] == 0


# --- the events' expectations, evaluated in DuckDB -------------------------------------------------------------------

def events_check(source_dir: Path, db: Path, instance, warehouse=None, **source):
    """Only the blocking check of raw_watch_events, on what the latest ingestion (in ``instance``) stored."""
    from dagster import AssetSelection

    resources = {"source": SourceResource(kind="canonical", data_dir=str(source_dir), **source),
                 "warehouse_db": warehouse or WarehouseResource(database=str(db))}
    return materialize([raw_titles, raw_users, raw_watch_events, raw_events_meet_expectations], resources=resources,
                       instance=instance, raise_on_error=False,
                       selection=AssetSelection.checks(raw_events_meet_expectations))


def ingested_good_events(tmp_path):
    """(warehouse file, source dir, instance) after the raw assets ingested GOOD_EVENTS for WEEK."""
    from dagster import DagsterInstance

    instance = DagsterInstance.ephemeral()
    db, source = tmp_path / "w.duckdb", write_source(tmp_path / "src", GOOD_EVENTS)
    resources = {"source": SourceResource(kind="canonical", data_dir=str(source)),
                 "warehouse_db": WarehouseResource(database=str(db))}
    assert materialize([raw_titles, raw_users, raw_watch_events], resources=resources, partition_key=WEEK,
                       instance=instance).success
    return db, source, instance


def check_evaluation(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_events_meet_expectations"]
    return evaluation


def test_events_check_passes_on_clean_ingested_events(tmp_path):
    db, source, instance = ingested_good_events(tmp_path)
    evaluation = check_evaluation(events_check(source, db, instance))
    assert evaluation.passed
    assert evaluation.description == "raw_watch_events: all 6 expectations met on 3 rows"


def test_events_check_fails_naming_each_broken_expectation_with_its_count(tmp_path):
    """Rows the reader would have quarantined, written behind its back: an unknown title, a duplicate triple and a
    timestamp before the earliest plausible time, each counted; events outside the ingested range are not read."""
    db, source, instance = ingested_good_events(tmp_path)
    with duckdb.connect(str(db)) as conn:
        conn.execute("""INSERT INTO raw_watch_events VALUES
            (1, 99, TIMESTAMP '2025-03-04 11:00:00', DATE '2025-03-03'),     -- unknown title
            (1, 1, TIMESTAMP '2025-03-03 10:00:00', DATE '2025-03-03'),      -- repeats a stored event
            (2, 2, TIMESTAMP '2025-03-03 00:30:00', DATE '2025-03-03'),      -- before the earliest time set below
            (2, 77, TIMESTAMP '2025-03-20 00:00:00', DATE '2025-03-17')      -- after the range: not checked""")
    evaluation = check_evaluation(events_check(source, db, instance, earliest_event="2025-03-03T01:00:00"))
    assert not evaluation.passed
    assert evaluation.description == (
        "raw_watch_events: expect_column_values_to_be_between(ts): 1 of 6 rows; "
        "expect_column_values_to_be_in_set(title_id): 1 of 6 rows; "
        "expect_compound_columns_to_be_unique(user_id,title_id,ts): 2 of 6 rows")
    assert evaluation.metadata["rows"].value == 6 and evaluation.metadata["failed_expectations"].value == 3


def test_event_expectations_in_duckdb_count_nulls_bounds_unknown_titles_and_duplicates(tmp_path):
    """Every rule on a table without the warehouse's NOT NULL constraints, so that null ids can be stored."""
    from rec_assets.quality.expectations import events_outcome_in_duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE TABLE raw_titles AS SELECT * FROM (VALUES (1), (2)) AS t (title_id)")
        conn.execute("CREATE TABLE raw_watch_events (user_id BIGINT, title_id BIGINT, ts TIMESTAMP)")
        conn.execute("""INSERT INTO raw_watch_events VALUES
            (1, 1, TIMESTAMP '2025-03-03 10:00:00'),
            (NULL, 2, TIMESTAMP '2025-03-03 11:00:00'),     -- null user id
            (3, NULL, TIMESTAMP '2025-03-03 12:00:00'),     -- null title id: neither unknown nor in the set
            (4, 2, TIMESTAMP '2025-03-09 12:00:00'),        -- after latest
            (5, 2, TIMESTAMP '2025-03-03 09:00:00'),        -- before earliest
            (6, 7, TIMESTAMP '2025-03-04 10:00:00'),        -- unknown title
            (7, 1, TIMESTAMP '2025-03-05 10:00:00'),
            (7, 1, TIMESTAMP '2025-03-05 10:00:00'),        -- duplicate triple (both rows count, as in GX)
            (8, 7, TIMESTAMP '2025-04-01 00:00:00')         -- outside the checked range""")
        outcome = events_outcome_in_duckdb(conn, "events", start=datetime(2025, 3, 3), end=datetime(2025, 3, 10),
                                           earliest=datetime(2025, 3, 3, 10), latest=datetime(2025, 3, 8))
        unbounded = events_outcome_in_duckdb(conn, "events", start=datetime(2025, 3, 3), end=datetime(2025, 3, 10),
                                             earliest=None, latest=datetime(2025, 3, 10))
    assert outcome.rows == 8
    assert {(f.expectation, f.column): f.unexpected_count for f in outcome.failures} == {
        ("expect_column_values_to_not_be_null", "user_id"): 1,
        ("expect_column_values_to_not_be_null", "title_id"): 1,
        ("expect_column_values_to_be_between", "ts"): 2,
        ("expect_column_values_to_be_in_set", "title_id"): 1,
        ("expect_compound_columns_to_be_unique", "user_id,title_id,ts"): 2,
    }
    assert "expect_column_values_to_not_be_null(user_id): 1 of 8 rows" in outcome.describe()
    assert {f.expectation for f in unbounded.failures} == {
        "expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set",
        "expect_compound_columns_to_be_unique"}  # no lower bound, and every ts is before latest


def test_event_expectations_in_duckdb_agree_with_the_gx_suite(tmp_path):
    """The SQL form and the GX form (events_expectations on a pandas frame) give the same failures and counts."""
    import pandas as pd

    from rec_assets.quality.expectations import epoch_us, events_expectations, events_outcome_in_duckdb, run_suite

    rows = [(1, 1, datetime(2025, 3, 3)), (None, 2, datetime(2025, 3, 4)), (2, 5, datetime(2025, 3, 4)),
            (3, 1, datetime(2027, 1, 1)), (4, 2, datetime(2025, 3, 5)), (4, 2, datetime(2025, 3, 5))]
    frame = pd.DataFrame(rows, columns=["user_id", "title_id", "ts"])
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE TABLE raw_titles AS SELECT * FROM (VALUES (1), (2)) AS t (title_id)")
        conn.execute("CREATE TABLE raw_watch_events AS SELECT user_id::BIGINT AS user_id, title_id::BIGINT AS "
                     "title_id, ts::TIMESTAMP AS ts FROM frame")
        sql = events_outcome_in_duckdb(conn, "events", start=datetime(1, 1, 1), end=datetime(9999, 1, 1),
                                       earliest=datetime(2020, 1, 1), latest=datetime(2026, 1, 1))
    gx = run_suite("events", frame.assign(ts=[epoch_us(t) for t in frame["ts"]]),
                   events_expectations([1, 2], datetime(2020, 1, 1), datetime(2026, 1, 1)))
    assert sql.rows == gx.rows == 6 and sql.evaluated == gx.evaluated == 6
    assert sorted(f.describe() for f in sql.failures) == sorted(f.describe() for f in gx.failures)
    assert len(sql.failures) == 4  # null user id, ts after latest, unknown title, the repeated triple


class _NoBulkFetch:
    """A DuckDB connection that refuses to hand a result over as a frame, an Arrow table or a list of all rows, and
    counts the rows it does hand over: a check that copies the events out of DuckDB fails here, whatever its size."""

    BULK = ("df", "fetchdf", "fetch_df", "fetch_df_chunk", "arrow", "fetch_arrow_table", "fetch_record_batch",
            "record_batch", "to_arrow_table", "fetchnumpy", "pl", "torch", "tf", "fetchall", "fetchmany")

    def __init__(self, conn, fetched: list):
        self._conn, self._fetched = conn, fetched

    def execute(self, *args, **kwargs):
        self._conn.execute(*args, **kwargs)
        return self

    def sql(self, *args, **kwargs):
        raise AssertionError("relations are not allowed in this check")

    def fetchone(self):
        row = self._conn.fetchone()
        self._fetched.append(row)
        return row

    def __getattr__(self, name):
        if name in self.BULK:
            raise AssertionError(f"the check fetched a bulk result ({name}) out of DuckDB")
        return getattr(self._conn, name)


class NoBulkFetchWarehouse(WarehouseResource):
    def connect(self, read_only: bool = False):
        from contextlib import contextmanager

        fetched = NO_BULK_FETCHED

        @contextmanager
        def guarded():
            with WarehouseResource.connect(self, read_only=read_only) as conn:
                yield _NoBulkFetch(conn, fetched)

        return guarded()


NO_BULK_FETCHED: list = []


def test_events_check_never_copies_the_events_out_of_duckdb(tmp_path):
    db, source, instance = ingested_good_events(tmp_path)
    NO_BULK_FETCHED.clear()
    result = events_check(source, db, instance, warehouse=NoBulkFetchWarehouse(database=str(db)))
    evaluation = check_evaluation(result)
    assert evaluation.passed, evaluation.description
    assert len(NO_BULK_FETCHED) <= 2  # the memory limit to restore and one row of counts, whatever the events
