"""Writes of the raw tables into DuckDB, each in one transaction (pure code: no dagster import).

A failed write rolls back, so nothing already stored is lost or half-written. Events are replaced by
event-week range (delete the range, insert the range), which makes re-ingesting a week idempotent and
never touches other weeks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

RAW_TITLES_DDL = """
CREATE TABLE IF NOT EXISTS raw_titles (
    title_id BIGINT PRIMARY KEY,
    title VARCHAR,
    category VARCHAR NOT NULL,
    genres VARCHAR[],
    subgenres VARCHAR[],
    actors VARCHAR[],
    directors VARCHAR[],
    maturity_rating VARCHAR,
    country VARCHAR,
    release_year INTEGER,
    acquisition_date DATE,
    synopsis VARCHAR,
    image VARCHAR
)
"""

RAW_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS raw_watch_events (
    user_id BIGINT NOT NULL,
    title_id BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    event_week DATE NOT NULL
)
"""

REJECTED_DDL = """
CREATE TABLE IF NOT EXISTS rejected_rows (
    kind VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    reason VARCHAR NOT NULL,
    raw VARCHAR,
    PRIMARY KEY (kind, source_file, line, reason)
)
"""

TITLE_COLUMNS = [
    "title_id", "title", "category", "genres", "subgenres", "actors", "directors",
    "maturity_rating", "country", "release_year", "acquisition_date", "synopsis", "image",
]


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for ddl in (RAW_TITLES_DDL, RAW_EVENTS_DDL, REJECTED_DDL):
        conn.execute(ddl)


def replace_titles(conn: duckdb.DuckDBPyConnection, titles: pd.DataFrame) -> int:
    """The catalogue is a snapshot: replace it whole."""
    frame = titles[TITLE_COLUMNS]
    with transaction(conn):
        ensure_raw_tables(conn)
        conn.execute("DELETE FROM raw_titles")
        conn.register("incoming_titles", frame)
        conn.execute("INSERT INTO raw_titles BY NAME SELECT * FROM incoming_titles")
        conn.unregister("incoming_titles")
    return len(frame)


def replace_users(conn: duckdb.DuckDBPyConnection, users: pd.DataFrame) -> int:
    """Users are a snapshot too; their feature columns depend on the source, so the table follows them."""
    with transaction(conn):
        conn.register("incoming_users", users)
        conn.execute("CREATE OR REPLACE TABLE raw_users AS SELECT * FROM incoming_users ORDER BY user_id")
        conn.unregister("incoming_users")
    return len(users)


def replace_events(
    conn: duckdb.DuckDBPyConnection,
    events: pa.Table | pd.DataFrame,
    start: datetime | None,
    end: datetime | None,
) -> tuple[int, int]:
    """Replace the events with ``start <= ts < end`` (None: unbounded). Returns (deleted, inserted)."""
    bounds = {"start": start or datetime(1, 1, 1), "end": end or datetime(9999, 1, 1)}
    with transaction(conn):
        ensure_raw_tables(conn)
        deleted = conn.execute(
            "DELETE FROM raw_watch_events WHERE ts >= $start AND ts < $end", bounds
        ).fetchone()[0]
        conn.register("incoming_events", events)
        inserted = conn.execute(
            """
            INSERT INTO raw_watch_events
            SELECT user_id, title_id, ts::TIMESTAMP AS ts, date_trunc('week', ts::TIMESTAMP)::DATE AS event_week
            FROM incoming_events
            WHERE ts::TIMESTAMP >= $start AND ts::TIMESTAMP < $end
            ORDER BY ts, user_id, title_id
            """,
            bounds,
        ).fetchone()[0]
        conn.unregister("incoming_events")
    return int(deleted), int(inserted)


def record_rejected(conn: duckdb.DuckDBPyConnection, kind: str, rejected: pd.DataFrame) -> int:
    """Quarantine rejected rows (file, line, reason, raw text); a row seen again is stored once."""
    if rejected.empty:
        return 0
    frame = rejected.rename(columns={"file": "source_file"})[["source_file", "line", "reason", "raw"]].copy()
    frame.insert(0, "kind", kind)
    with transaction(conn):
        ensure_raw_tables(conn)
        conn.register("incoming_rejected", frame)
        conn.execute("INSERT OR IGNORE INTO rejected_rows BY NAME SELECT * FROM incoming_rejected")
        conn.unregister("incoming_rejected")
    return len(frame)


def events_fingerprint(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> tuple[int, str]:
    """Row count and an order-independent content hash of the stored events of a range (data version)."""
    count, digest = conn.execute(
        """
        SELECT count(*), coalesce(bit_xor(hash(user_id, title_id, ts)), 0)
        FROM raw_watch_events WHERE ts >= $start AND ts < $end
        """,
        {"start": start, "end": end},
    ).fetchone()
    return int(count), f"{count}-{int(digest):016x}"


def replace_week_rows(conn: duckdb.DuckDBPyConnection, table: str, week: str, rows: pd.DataFrame) -> tuple[int, int]:
    """Replace one scoring week's rows of a result table (created from the frame's columns on first use)."""
    with transaction(conn):
        conn.register("incoming_rows", rows)
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" AS SELECT * FROM incoming_rows WHERE false')
        deleted = conn.execute(
            f'DELETE FROM "{table}" WHERE scoring_week = $week::DATE', {"week": week}
        ).fetchone()[0]
        inserted = conn.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM incoming_rows').fetchone()[0]
        conn.unregister("incoming_rows")
    return int(deleted), int(inserted)
