"""The warehouse's tables and the writes the assets call, whichever store holds them (pure code).

Each write selects the same rows with the same DDL and checks, then hands them to the writer of the
connection's store (``writer_of``): ``duckdb_file`` (one transaction per write) or ``parquet`` (one file
per partition). Snapshots (titles, tags, users) are replaced whole, events by ``ts`` range (so re-ingesting
a week is idempotent and touches no other week), result tables by scoring week; rejected rows are a set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import duckdb
import pandas as pd
import pyarrow as pa

from rec_assets.storage.duckdb_file import DUCKDB_FILE, DuckDBFileWriter
from rec_assets.storage.parquet import ParquetWriter, store_of

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

RAW_TABLES_DDL = (RAW_TITLES_DDL, RAW_EVENTS_DDL, RAW_TITLE_TAGS_DDL, REJECTED_DDL)

# The stored form of incoming events: naive UTC timestamps, the event week, in (ts, user, title) order.
EVENTS_SELECT = """
    SELECT user_id, title_id, ts::TIMESTAMP AS ts, date_trunc('week', ts::TIMESTAMP)::DATE AS event_week
    FROM incoming_events
    WHERE ts::TIMESTAMP >= $start AND ts::TIMESTAMP < $end
    ORDER BY ts, user_id, title_id
"""


def writer_of(conn: duckdb.DuckDBPyConnection) -> DuckDBFileWriter | ParquetWriter:
    """The writer of the store behind ``conn``: its Parquet table store, else the DuckDB file."""
    store = store_of(conn)
    return DUCKDB_FILE if store is None else ParquetWriter(store)


@contextmanager
def registered(conn: duckdb.DuckDBPyConnection, name: str, frame) -> Iterator[str]:
    """``frame`` (pandas or Arrow) readable as the view ``name`` of ``conn`` while the block runs."""
    conn.register(name, frame)
    try:
        yield name
    finally:
        conn.unregister(name)


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    DUCKDB_FILE.create_tables(conn, RAW_TABLES_DDL)


def table_columns(conn: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """Column names of a table or view, in order; empty when there is none."""
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $name ORDER BY ordinal_position",
        {"name": name},
    ).fetchall()]


def stray_rows(conn: duckdb.DuckDBPyConnection, relation: str, column: str, value: object) -> int:
    """Rows of ``relation`` whose ``column`` is not ``value`` (NULL counts as another value)."""
    return int(conn.execute(
        f'SELECT count(*) FROM "{relation}" WHERE "{column}" IS DISTINCT FROM $value', {"value": value}
    ).fetchone()[0])


def _replace_snapshot(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, ddl: str | None,
                      order: str = "") -> int:
    writer = writer_of(conn)
    with registered(conn, "incoming_snapshot", frame), writer.transaction(conn):
        if ddl is not None:
            writer.create_tables(conn, RAW_TABLES_DDL)
        writer.replace_snapshot(conn, table, f"SELECT * FROM incoming_snapshot{order}", ddl)
    return len(frame)


def replace_titles(conn: duckdb.DuckDBPyConnection, titles: pd.DataFrame) -> int:
    """The catalogue is a snapshot: replace it whole."""
    return _replace_snapshot(conn, "raw_titles", titles[TITLE_COLUMNS], RAW_TITLES_DDL)


def replace_title_tags(conn: duckdb.DuckDBPyConnection, tags: pd.DataFrame) -> int:
    """Tag applications (title, tag, when) are a snapshot of the source's tags file: replace them whole."""
    # Converted here, not by a ::TIMESTAMP cast in SQL, which would follow the connection's TimeZone setting.
    frame = tags[TAG_COLUMNS].assign(ts=pd.to_datetime(tags["ts"], utc=True).dt.tz_localize(None))
    return _replace_snapshot(conn, "raw_title_tags", frame, RAW_TITLE_TAGS_DDL)


def replace_users(conn: duckdb.DuckDBPyConnection, users: pd.DataFrame) -> int:
    """Users are a snapshot too; their feature columns depend on the source, so the table follows them."""
    return _replace_snapshot(conn, "raw_users", users, None, " ORDER BY user_id")


def replace_events(
    conn: duckdb.DuckDBPyConnection,
    events: pa.Table | pd.DataFrame,
    start: datetime | None,
    end: datetime | None,
) -> tuple[int, int]:
    """Replace the events with ``start <= ts < end`` (None: unbounded). Returns (deleted, inserted)."""
    bounds = {"start": start or datetime(1, 1, 1), "end": end or datetime(9999, 1, 1)}
    writer = writer_of(conn)
    with registered(conn, "incoming_events", events), writer.transaction(conn):
        writer.create_tables(conn, RAW_TABLES_DDL)
        deleted, inserted = writer.replace_events(conn, EVENTS_SELECT, bounds, RAW_EVENTS_DDL)
    return int(deleted), int(inserted)


def record_rejected(conn: duckdb.DuckDBPyConnection, kind: str, rejected: pd.DataFrame) -> int:
    """Quarantine rejected rows (file, line, reason, raw text); a row seen again is stored once."""
    if rejected.empty:
        return 0
    frame = rejected.rename(columns={"file": "source_file"})[["source_file", "line", "reason", "raw"]].copy()
    frame.insert(0, "kind", kind)
    writer = writer_of(conn)
    with registered(conn, "incoming_rejected", frame), writer.transaction(conn):
        writer.create_tables(conn, RAW_TABLES_DDL)
        writer.add_rows(conn, "rejected_rows", "SELECT * FROM incoming_rejected", REJECTED_DDL, "kind", kind)
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


def replace_partition(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    stage: str,
    column: str,
    value: object,
    stage_columns: list[str] | None = None,
) -> tuple[int, int, bool]:
    """Replace partition ``column = value`` of ``table`` by the rows of the temporary table ``stage``, in the
    connection's store; call it inside ``writer_of(conn).transaction``. Returns (replaced, inserted, recreated).

    With ``stage_columns`` (a SQL model's result) a table whose columns differ is rebuilt: a changed model changes
    its code version, so every stored partition is stale anyway. Without, the table is created on first use only.
    """
    writer = writer_of(conn)
    if writer.whole_partitions:
        stray = stray_rows(conn, stage, column, value)
        if stray:
            raise ValueError(f"{table}: {stray} row(s) are not of {column.replace('_', ' ')} {value}")
    existing = table_columns(conn, table)
    recreated = bool(existing) and stage_columns is not None and existing != stage_columns
    replaced = 0
    if existing and not recreated:
        replaced = conn.execute(
            f'SELECT count(*) FROM "{table}" WHERE "{column}" = $value', {"value": value}
        ).fetchone()[0]
    inserted = conn.execute(f'SELECT count(*) FROM "{stage}"').fetchone()[0]
    writer.replace_partition(conn, table, stage, column, value, recreate=recreated or not existing)
    return int(replaced), int(inserted), recreated


def replace_week_rows(conn: duckdb.DuckDBPyConnection, table: str, week: str, rows: pd.DataFrame) -> tuple[int, int]:
    """Replace one scoring week's rows of a result table (created from the frame's columns on first use)."""
    scoring_week: date = pd.Timestamp(week).date()
    writer = writer_of(conn)
    with registered(conn, "incoming_rows", rows), writer.transaction(conn, "_week_rows"):
        conn.execute("CREATE OR REPLACE TEMP TABLE _week_rows AS SELECT * FROM incoming_rows")
        replaced, inserted, _ = replace_partition(conn, table, "_week_rows", "scoring_week", scoring_week)
    return replaced, inserted
