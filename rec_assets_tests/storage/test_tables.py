"""Raw table writers: the tag snapshot, in the DuckDB file and on the Parquet table store alike."""

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest

from rec_assets.sources.frames import tags_frame
from rec_assets.storage.parquet import TableStore
from rec_assets.storage.tables import ensure_raw_tables, replace_title_tags

UTC = timezone.utc
PARIS_WINTER = timezone(timedelta(hours=1))

FIRST = tags_frame(
    [1, 1, 2],
    ["noir", "noir", "heist"],
    [datetime(2025, 1, 5, 10, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 3, 9, tzinfo=UTC)],
)
# 12:30 in Paris in winter is 11:30 UTC: stored as the naive UTC time, as raw_watch_events.ts is.
SECOND = tags_frame([3], ["twist"], [datetime(2025, 3, 1, 12, 30, tzinfo=PARIS_WINTER)])


@pytest.fixture(params=["duckdb", "parquet"])
def connect(request, tmp_path):
    """Fresh connections to one warehouse: a DuckDB file, or a Parquet table store (each reads what is on disk).
    Their session time zone is not UTC, so that a writer leaning on it would store shifted times."""
    store = TableStore.from_setting(str(tmp_path / "tables")) if request.param == "parquet" else None

    @contextmanager
    def connect_away_from_utc():
        with store.connect() if store else duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
            conn.execute("SET TimeZone = 'America/New_York'")
            yield conn

    return connect_away_from_utc


def stored(conn) -> list[tuple]:
    return conn.execute("SELECT title_id, tag, ts FROM raw_title_tags ORDER BY ALL").fetchall()


def test_the_tag_snapshot_is_replaced_whole(connect):
    with connect() as conn:
        assert replace_title_tags(conn, FIRST) == 3
    with connect() as conn:
        assert stored(conn) == [(1, "noir", datetime(2025, 1, 5, 10)), (1, "noir", datetime(2025, 2, 1)),
                                (2, "heist", datetime(2025, 2, 3, 9))]
        assert replace_title_tags(conn, SECOND) == 1
    with connect() as conn:
        assert stored(conn) == [(3, "twist", datetime(2025, 3, 1, 11, 30))]
        types = [row[:2] for row in conn.execute("DESCRIBE raw_title_tags").fetchall()]
    assert types == [("title_id", "BIGINT"), ("tag", "VARCHAR"), ("ts", "TIMESTAMP")]


def test_a_source_without_tags_leaves_an_empty_table_not_a_missing_one(connect):
    with connect() as conn:
        replace_title_tags(conn, FIRST)
        assert replace_title_tags(conn, tags_frame([], [], [])) == 0
    with connect() as conn:
        assert stored(conn) == []


def test_the_raw_tables_include_an_empty_tag_table_from_the_first_write():
    with duckdb.connect() as conn:
        ensure_raw_tables(conn)
        assert conn.execute("SELECT count(*) FROM raw_title_tags").fetchone()[0] == 0


def test_a_failed_write_keeps_the_previous_snapshot(connect):
    broken = pd.DataFrame({"title_id": [4], "tag": [None], "ts": [pd.Timestamp("2025-03-02", tz="UTC")]})
    with connect() as conn:
        replace_title_tags(conn, FIRST)
        with pytest.raises(duckdb.ConstraintException):
            replace_title_tags(conn, broken)  # tag is NOT NULL, in the file and on the store
    with connect() as conn:
        assert len(stored(conn)) == 3
