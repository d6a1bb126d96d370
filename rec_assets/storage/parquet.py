"""The Parquet table store: tables as Parquet files on a shared path or ``s3://`` prefix (pure code).

``REC_TABLE_STORE`` set to a filesystem path or an object-store URI makes every table a directory of Parquet
files, one file per partition (``<store>/<table>/<column>=<value>/part-0.parquet``), read through one DuckDB
view per table. ``ParquetWriter`` is this store's writer: a partition is computed in DuckDB, then its file is
written whole, atomically, so several workers write different partitions at once with no lock. There is no
transaction across partitions. ``s3://`` goes through the client ``REC_OBJECT_STORE_CLIENT`` picks (DuckDB's
httpfs or pyarrow: ``object_store``). Layout, guarantees, limits:
docs/design.md, "The Parquet table store".
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from rec_assets.storage.object_store import (
    AUTO,
    COPY_OPTIONS,
    AwsSettings,
    ObjectStoreClient,
    client_setting,
    duckdb_glob,
    open_client,
    read_parquet_sql,
    sql_literal,
)

DUCKDB_STORE = "duckdb"
OBJECT_STORE_SCHEMES = ("s3://",)  # gs:// and r2:// go through the same S3 API; see deploy/README.md
PART_FILE = "part-0.parquet"
# Tables written as content-addressed increments (one file per write, named by its content) and read as a
# set: the same rejected row stored twice counts once, as INSERT OR IGNORE does in the DuckDB file.
SET_TABLES = frozenset({"rejected_rows"})

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_OPEN: dict[int, tuple[TableStore, ObjectStoreClient | None]] = {}  # connection -> its store and client
_OPEN_LOCK = threading.Lock()


def is_duckdb_store(setting: str | None) -> bool:
    return (setting or "").strip().lower() in ("", DUCKDB_STORE)


def _identifier(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"{name!r} is not a plain table or column name")
    return f'"{name}"'


def partition_key(value: object) -> str:
    """The folder value of a partition: ISO dates (midnight datetimes as dates), or plain names."""
    if isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    if not _SAFE_NAME.match(text) or "=" in text or "/" in text:
        raise ValueError(f"partition value {value!r} cannot name a folder")
    return text


@dataclass(frozen=True)
class TableStore:
    """One table store: an absolute filesystem path or an object-store URI, without a trailing slash, and the
    object-store client (``REC_OBJECT_STORE_CLIENT``: auto, httpfs or pyarrow) an ``s3://`` location goes through."""

    location: str
    object_store_client: str = AUTO
    aws: AwsSettings | None = field(default=None, repr=False, compare=False)  # None: the AWS_* variables

    def __post_init__(self) -> None:
        object.__setattr__(self, "object_store_client", client_setting(self.object_store_client))

    @classmethod
    def from_setting(cls, setting: str, object_store_client: str = AUTO, aws: AwsSettings | None = None) -> TableStore:
        text = setting.strip()
        if is_duckdb_store(text):
            raise ValueError("REC_TABLE_STORE=duckdb is the DuckDB file, not a Parquet table store")
        text = text.removeprefix("file://")
        if not text.startswith(OBJECT_STORE_SCHEMES):
            if "://" in text:
                raise ValueError(f"REC_TABLE_STORE={setting!r}: use 'duckdb', a filesystem path or s3://bucket/prefix")
            text = str(Path(text).expanduser().resolve())
        text = text.rstrip("/")
        if "=" in text:
            raise ValueError(f"REC_TABLE_STORE={setting!r}: a '=' in the location would read as a hive partition")
        return cls(text, object_store_client, aws)

    @property
    def is_object_store(self) -> bool:
        return self.location.startswith(OBJECT_STORE_SCHEMES)

    # --- paths -------------------------------------------------------------------------------------------------

    def table_uri(self, table: str) -> str:
        _identifier(table)
        return f"{self.location}/{table}"

    def partition_uri(self, table: str, column: str | None = None, value: object = None,
                      file_name: str = PART_FILE) -> str:
        if column is None:
            return f"{self.table_uri(table)}/{file_name}"
        _identifier(column)
        return f"{self.table_uri(table)}/{column}={partition_key(value)}/{file_name}"

    def table_glob(self, table: str) -> str:
        return f"{self.table_uri(table)}/**/*.parquet"

    # --- connections -------------------------------------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB connection with a view per stored table; ``store_of`` finds this store from it."""
        conn = duckdb.connect()
        try:
            client = open_client(conn, self.object_store_client, self.aws) if self.is_object_store else None
            if client is None:
                Path(self.location).mkdir(parents=True, exist_ok=True)
            with _OPEN_LOCK:
                _OPEN[id(conn)] = (self, client)
            for table in self.tables(conn):
                self.refresh_view(conn, table)
            yield conn
        finally:
            with _OPEN_LOCK:
                _OPEN.pop(id(conn), None)
            conn.close()

    def client(self, conn: duckdb.DuckDBPyConnection) -> ObjectStoreClient | None:
        """The object-store client of ``conn`` (a connection of ``connect``); None on a filesystem path."""
        if not self.is_object_store:
            return None
        entry = _OPEN.get(id(conn))
        if entry is None or entry[1] is None:
            raise RuntimeError(f"{self.location}: use a connection of TableStore.connect (it opens the object store)")
        return entry[1]

    def files(self, conn: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
        """Files matching ``pattern`` (DuckDB's glob: ``*`` in a segment, ``**`` for any number of them)."""
        client = self.client(conn)
        return duckdb_glob(conn, pattern) if client is None else client.files(conn, pattern)

    def tables(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        """Tables with at least one Parquet file."""
        prefix = self.location + "/"
        names = {f[len(prefix):].split("/", 1)[0] for f in self.files(conn, f"{self.location}/*/**/*.parquet")
                 if f.startswith(prefix)}
        return sorted(n for n in names if _SAFE_NAME.match(n) and not n.startswith("."))

    def partitions(self, conn: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[str, list[str]]:
        """Folder value -> files of each stored partition of ``table`` by ``column``."""
        found: dict[str, list[str]] = {}
        marker = f"/{column}="
        for file in self.files(conn, f"{self.table_uri(table)}/{column}=*/*.parquet"):
            value = file[file.index(marker) + len(marker):].split("/", 1)[0]
            found.setdefault(value, []).append(file)
        return found

    def has_view(self, conn: duckdb.DuckDBPyConnection, table: str) -> bool:
        return bool(conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = $name", {"name": table}
        ).fetchone()[0])

    def refresh_view(self, conn: duckdb.DuckDBPyConnection, table: str) -> None:
        """(Re)define the table's view over its files; drop it when the table has none."""
        name, glob, client = _identifier(table), self.table_glob(table), self.client(conn)
        files = self.files(conn, glob)
        if not files:
            conn.execute(f"DROP VIEW IF EXISTS {name}")
            if client is not None:
                client.drop(conn, table)
            return
        source = read_parquet_sql(glob) if client is None else client.scan(conn, table, glob, files)
        distinct = "DISTINCT " if table in SET_TABLES else ""
        conn.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {distinct}* FROM {source}")

    # --- writes ------------------------------------------------------------------------------------------------

    def write(self, conn: duckdb.DuckDBPyConnection, relation: str, uri: str) -> None:
        """Write the rows of ``relation`` (a table or view of ``conn``) as one Parquet file at ``uri``, whole."""
        source, client = _identifier(relation), self.client(conn)
        if client is not None:  # one upload, visible only when complete
            client.write(conn, source, uri)
            return
        final = Path(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.stem}.{uuid.uuid4().hex}.tmp")  # never matches *.parquet
        try:
            conn.execute(f"COPY {source} TO {sql_literal(str(temporary))} {COPY_OPTIONS}")
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def remove(self, conn: duckdb.DuckDBPyConnection, uri: str, empty_like: str) -> None:
        """Retire a partition file: unlink it on a filesystem, delete the object with pyarrow; with httpfs (DuckDB
        cannot delete objects) overwrite it with no rows of ``empty_like``'s columns, an empty partition."""
        client = self.client(conn)
        if client is None:
            Path(uri).unlink(missing_ok=True)
        else:
            client.remove(conn, uri, _identifier(empty_like))


def store_of(conn: duckdb.DuckDBPyConnection) -> TableStore | None:
    """The Parquet table store behind a connection made by ``TableStore.connect``; None for a DuckDB file."""
    entry = _OPEN.get(id(conn))
    return None if entry is None else entry[0]


def client_name(conn: duckdb.DuckDBPyConnection) -> str | None:
    """Which client a connection's object store goes through (``httpfs`` or ``pyarrow``); None otherwise."""
    entry = _OPEN.get(id(conn))
    return None if entry is None or entry[1] is None else entry[1].name


STAGE = "_store_stage"  # the temporary table a write's rows are staged in


@dataclass(frozen=True)
class ParquetWriter:
    """The writer of a Parquet table store: rows are staged in DuckDB with the table's DDL and checks, then each
    partition's file is written whole (``TableStore.write``) and the table's view refreshed."""

    store: TableStore
    whole_partitions = True  # a partition is one file: rows of another partition must not be written into it

    @contextmanager
    def transaction(self, conn: duckdb.DuckDBPyConnection, *temporary: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """No transaction across files (each file is replaced atomically); ``temporary`` tables are dropped after."""
        try:
            yield conn
        finally:
            for name in temporary:
                conn.execute(f"DROP TABLE IF EXISTS {_identifier(name)}")

    def create_tables(self, conn: duckdb.DuckDBPyConnection, ddls: Iterable[str]) -> None:
        """Nothing to do: a table of the store exists once it has a file."""

    def _stage(self, conn: duckdb.DuckDBPyConnection, table: str, ddl: str | None, select: str,
               parameters: dict | None = None, insert: str = "INSERT") -> int:
        """Stage ``select``'s rows in ``STAGE``: with ``table``'s DDL (so types, keys and NOT NULL match the DuckDB
        file), or with the selected columns when ``ddl`` is None. Returns the rows inserted."""
        if ddl is None:
            conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS {select}", parameters)
            return int(conn.execute(f"SELECT count(*) FROM {STAGE}").fetchone()[0])
        conn.execute(ddl.replace(f"CREATE TABLE IF NOT EXISTS {table}", f"CREATE OR REPLACE TEMP TABLE {STAGE}", 1))
        return int(conn.execute(f"{insert} INTO {STAGE} BY NAME {select}", parameters).fetchone()[0])

    def replace_snapshot(self, conn: duckdb.DuckDBPyConnection, table: str, select: str, ddl: str | None) -> None:
        """An unpartitioned snapshot table: one file, replaced whole."""
        self._stage(conn, table, ddl, select)
        self.store.write(conn, STAGE, self.store.partition_uri(table))
        conn.execute(f"DROP TABLE {STAGE}")
        self.store.refresh_view(conn, table)

    def replace_events(self, conn: duckdb.DuckDBPyConnection, select: str, bounds: dict,
                       ddl: str) -> tuple[int, int]:
        """Replace the events of [start, end) week file by week; a week the range covers only in part keeps its
        rows outside the range. Each week's file is replaced atomically. Returns (deleted, inserted)."""
        store = self.store
        inserted = self._stage(conn, "raw_watch_events", ddl, select, bounds)
        stored = store.has_view(conn, "raw_watch_events")
        deleted = conn.execute(
            "SELECT count(*) FROM raw_watch_events WHERE ts >= $start AND ts < $end", bounds
        ).fetchone()[0] if stored else 0
        incoming_weeks = {row[0] for row in conn.execute(f"SELECT DISTINCT event_week FROM {STAGE}").fetchall()}
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
                    SELECT user_id, title_id, ts, event_week FROM {STAGE} WHERE event_week = $week
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
        conn.execute(f"DROP TABLE {STAGE}")
        store.refresh_view(conn, "raw_watch_events")
        return int(deleted), int(inserted)

    def add_rows(self, conn: duckdb.DuckDBPyConnection, table: str, select: str, ddl: str, column: str,
                 value: object) -> None:
        """Add rows to a set table (``SET_TABLES``): one content-addressed file per distinct set of rows under
        ``column=value``, so writers never overwrite each other and the same rows written twice land in one file."""
        self._stage(conn, table, ddl, select, insert="INSERT OR IGNORE")
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _store_sorted AS SELECT * FROM {STAGE} ORDER BY ALL")
        digest = conn.execute("SELECT coalesce(bit_xor(hash(s)), 0) FROM _store_sorted AS s").fetchone()[0]
        uri = self.store.partition_uri(table, column, value, file_name=f"part-{int(digest):016x}.parquet")
        self.store.write(conn, "_store_sorted", uri)
        conn.execute("DROP TABLE _store_sorted")
        conn.execute(f"DROP TABLE {STAGE}")
        self.store.refresh_view(conn, table)

    def replace_partition(self, conn: duckdb.DuckDBPyConnection, table: str, stage: str, column: str,
                          value: object, recreate: bool) -> None:
        """Replace the file of partition ``column=value`` by the rows of ``stage`` (all of that partition:
        ``whole_partitions``); ``recreate`` (changed columns) also retires the other partitions' files."""
        target = self.store.partition_uri(table, column, value)
        if recreate:
            for files in self.store.partitions(conn, table, column).values():
                for file in files:
                    if file != target:
                        self.store.remove(conn, file, stage)
        self.store.write(conn, stage, target)
        self.store.refresh_view(conn, table)

