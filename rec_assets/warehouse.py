"""Writes of the raw tables into DuckDB, each in one transaction (pure code: no dagster import).

A failed write rolls back, so nothing already stored is lost or half-written. Events are replaced by
event-week range (delete the range, insert the range), which makes re-ingesting a week idempotent and
never touches other weeks.

On a connection of a Parquet table store (``REC_TABLE_STORE``, see ``rec_assets.storage``) the same
functions write Parquet partitions instead: the rows are staged in DuckDB with the same DDL and checks,
then each partition is written whole (raw_watch_events by event_week, result tables by scoring_week).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from rec_assets import storage

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

RAW_TITLE_TAGS_DDL = """
CREATE TABLE IF NOT EXISTS raw_title_tags (
    title_id BIGINT NOT NULL,
    tag VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL
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
TAG_COLUMNS = ["title_id", "tag", "ts"]


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
    for ddl in (RAW_TITLES_DDL, RAW_EVENTS_DDL, RAW_TITLE_TAGS_DDL, REJECTED_DDL):
        conn.execute(ddl)


def replace_titles(conn: duckdb.DuckDBPyConnection, titles: pd.DataFrame) -> int:
    """The catalogue is a snapshot: replace it whole."""
    frame = titles[TITLE_COLUMNS]
    store = storage.store_of(conn)
    if store is not None:
        return _store_replace_snapshot(conn, store, "raw_titles", frame, RAW_TITLES_DDL)
    with transaction(conn):
        ensure_raw_tables(conn)
        conn.execute("DELETE FROM raw_titles")
        conn.register("incoming_titles", frame)
        conn.execute("INSERT INTO raw_titles BY NAME SELECT * FROM incoming_titles")
        conn.unregister("incoming_titles")
    return len(frame)


def replace_title_tags(conn: duckdb.DuckDBPyConnection, tags: pd.DataFrame) -> int:
    """Tag applications (title, tag, when) are a snapshot of the source's tags file: replace them whole."""
    # Converted here, not by a ::TIMESTAMP cast in SQL, which would follow the connection's TimeZone setting.
    frame = tags[TAG_COLUMNS].assign(ts=pd.to_datetime(tags["ts"], utc=True).dt.tz_localize(None))
    store = storage.store_of(conn)
    if store is not None:
        return _store_replace_snapshot(conn, store, "raw_title_tags", frame, RAW_TITLE_TAGS_DDL)
    with transaction(conn):
        ensure_raw_tables(conn)
        conn.execute("DELETE FROM raw_title_tags")
        conn.register("incoming_tags", frame)
        conn.execute("INSERT INTO raw_title_tags BY NAME SELECT * FROM incoming_tags")
        conn.unregister("incoming_tags")
    return len(frame)


def replace_users(conn: duckdb.DuckDBPyConnection, users: pd.DataFrame) -> int:
    """Users are a snapshot too; their feature columns depend on the source, so the table follows them."""
    store = storage.store_of(conn)
    if store is not None:
        return _store_replace_snapshot(conn, store, "raw_users", users, None)
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
    store = storage.store_of(conn)
    if store is not None:
        return _store_replace_events(conn, store, events, bounds)
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
    store = storage.store_of(conn)
    if store is not None:
        return _store_record_rejected(conn, store, kind, frame)
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
    store = storage.store_of(conn)
    if store is not None:
        return _store_replace_week_rows(conn, store, table, week, rows)
    with transaction(conn):
        conn.register("incoming_rows", rows)
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" AS SELECT * FROM incoming_rows WHERE false')
        deleted = conn.execute(
            f'DELETE FROM "{table}" WHERE scoring_week = $week::DATE', {"week": week}
        ).fetchone()[0]
        inserted = conn.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM incoming_rows').fetchone()[0]
        conn.unregister("incoming_rows")
    return int(deleted), int(inserted)


# --- Parquet table store (REC_TABLE_STORE is a path or an s3:// URI) ---------------------------------------------


def _stage_table(ddl: str, table: str) -> str:
    """The DDL of a temporary staging table with ``table``'s columns and constraints."""
    return ddl.replace(f"CREATE TABLE IF NOT EXISTS {table}", "CREATE OR REPLACE TEMP TABLE _store_stage", 1)


def _store_replace_snapshot(conn, store: storage.TableStore, table: str, frame: pd.DataFrame, ddl: str | None) -> int:
    """An unpartitioned snapshot table: stage (with the table's DDL, so types and keys match the DuckDB file), write."""
    conn.register("incoming_snapshot", frame)
    try:
        if ddl is not None:
            conn.execute(_stage_table(ddl, table))
            conn.execute("INSERT INTO _store_stage BY NAME SELECT * FROM incoming_snapshot")
        else:
            conn.execute("CREATE OR REPLACE TEMP TABLE _store_stage AS SELECT * FROM incoming_snapshot ORDER BY user_id")
    finally:
        conn.unregister("incoming_snapshot")
    rows = conn.execute("SELECT count(*) FROM _store_stage").fetchone()[0]
    store.write(conn, "_store_stage", store.partition_uri(table))
    conn.execute("DROP TABLE _store_stage")
    store.refresh_view(conn, table)
    return int(rows)


def _store_replace_events(conn, store: storage.TableStore, events, bounds: dict) -> tuple[int, int]:
    """Replace the events of [start, end) week file by week; a week the range covers only in part keeps its
    rows outside the range. Each week's file is replaced atomically."""
    conn.register("incoming_events", events)
    try:
        conn.execute(_stage_table(RAW_EVENTS_DDL, "raw_watch_events"))
        inserted = conn.execute(
            """
            INSERT INTO _store_stage
            SELECT user_id, title_id, ts::TIMESTAMP AS ts, date_trunc('week', ts::TIMESTAMP)::DATE AS event_week
            FROM incoming_events
            WHERE ts::TIMESTAMP >= $start AND ts::TIMESTAMP < $end
            ORDER BY ts, user_id, title_id
            """,
            bounds,
        ).fetchone()[0]
    finally:
        conn.unregister("incoming_events")
    stored = store.has_view(conn, "raw_watch_events")
    deleted = conn.execute(
        "SELECT count(*) FROM raw_watch_events WHERE ts >= $start AND ts < $end", bounds
    ).fetchone()[0] if stored else 0
    incoming_weeks = {row[0] for row in conn.execute("SELECT DISTINCT event_week FROM _store_stage").fetchall()}
    existing = store.partitions(conn, "raw_watch_events", "event_week")
    touched = set(incoming_weeks)
    for key in existing:  # stored weeks that overlap [start, end)
        week_start = datetime.fromisoformat(key)
        if week_start < bounds["end"] and week_start + timedelta(days=7) > bounds["start"]:
            touched.add(week_start.date())
    for week in sorted(touched):
        week_start = datetime.combine(week, datetime.min.time())
        covered = bounds["start"] <= week_start and week_start + timedelta(days=7) <= bounds["end"]
        keep_old = stored and not covered and week.isoformat() in existing
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _store_week AS
            SELECT * FROM (
                {"SELECT user_id, title_id, ts, event_week FROM raw_watch_events WHERE event_week = $week"
                 " AND NOT (ts >= $start AND ts < $end) UNION ALL" if keep_old else ""}
                SELECT user_id, title_id, ts, event_week FROM _store_stage WHERE event_week = $week
            ) ORDER BY ts, user_id, title_id
            """,
            {"week": week, **({"start": bounds["start"], "end": bounds["end"]} if keep_old else {})},
        )
        uri = store.partition_uri("raw_watch_events", "event_week", week)
        if conn.execute("SELECT count(*) FROM _store_week").fetchone()[0]:
            store.write(conn, "_store_week", uri)
        elif week.isoformat() in existing:
            store.remove(conn, uri, "_store_week")
        conn.execute("DROP TABLE _store_week")
    conn.execute("DROP TABLE _store_stage")
    store.refresh_view(conn, "raw_watch_events")
    return int(deleted), int(inserted)


def _store_record_rejected(conn, store: storage.TableStore, kind: str, frame: pd.DataFrame) -> int:
    """One content-addressed file per distinct set of rejected rows: writers never overwrite each other, the same
    rows written twice land in the same file, and the table is read as a set."""
    conn.register("incoming_rejected", frame)
    try:
        conn.execute(_stage_table(REJECTED_DDL, "rejected_rows"))
        conn.execute("INSERT OR IGNORE INTO _store_stage BY NAME SELECT * FROM incoming_rejected")
    finally:
        conn.unregister("incoming_rejected")
    conn.execute("CREATE OR REPLACE TEMP TABLE _store_sorted AS SELECT * FROM _store_stage ORDER BY ALL")
    digest = conn.execute("SELECT coalesce(bit_xor(hash(s)), 0) FROM _store_sorted AS s").fetchone()[0]
    uri = store.partition_uri("rejected_rows", "kind", kind, file_name=f"part-{int(digest):016x}.parquet")
    store.write(conn, "_store_sorted", uri)
    conn.execute("DROP TABLE _store_sorted")
    conn.execute("DROP TABLE _store_stage")
    store.refresh_view(conn, "rejected_rows")
    return len(frame)


def _store_replace_week_rows(conn, store: storage.TableStore, table: str, week: str,
                             rows: pd.DataFrame) -> tuple[int, int]:
    conn.register("incoming_rows", rows)
    try:
        conn.execute("CREATE OR REPLACE TEMP TABLE _store_stage AS SELECT * FROM incoming_rows")
    finally:
        conn.unregister("incoming_rows")
    stray = conn.execute(
        "SELECT count(*) FROM _store_stage WHERE scoring_week IS DISTINCT FROM $week::DATE", {"week": week}
    ).fetchone()[0]
    if stray:
        raise ValueError(f"{table}: {stray} row(s) are not of scoring week {week}")
    deleted = conn.execute(
        f'SELECT count(*) FROM "{table}" WHERE scoring_week = $week::DATE', {"week": week}
    ).fetchone()[0] if store.has_view(conn, table) else 0
    inserted = conn.execute("SELECT count(*) FROM _store_stage").fetchone()[0]
    store.write(conn, "_store_stage", store.partition_uri(table, "scoring_week", pd.Timestamp(week).date()))
    conn.execute("DROP TABLE _store_stage")
    store.refresh_view(conn, table)
    return int(deleted), int(inserted)
