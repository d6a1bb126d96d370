"""Tables as Parquet files on a shared path or object-store prefix, read through DuckDB views (pure code).

``REC_TABLE_STORE`` chooses where the warehouse's tables live:

- ``duckdb`` (default): the one local DuckDB file (``rec_assets.defs.resources.WarehouseResource``), one
  writer at a time. Nothing in this module runs.
- a filesystem path (a shared volume: NFS, EFS, a ReadWriteMany PVC) or an ``s3://bucket/prefix`` URI
  (any S3-compatible store; DuckDB's ``httpfs`` extension): every table is a directory of Parquet files,
  one file per partition, so several workers write different partitions at once with no lock::

      <store>/raw_titles/part-0.parquet                                  catalogue snapshot
      <store>/raw_users/part-0.parquet                                   user snapshot
      <store>/raw_title_tags/part-0.parquet                              tag snapshot (a file even when empty)
      <store>/raw_watch_events/event_week=2025-03-03/part-0.parquet      one file per event week
      <store>/split_windows/scoring_week=2025-03-03/part-0.parquet       one file per scoring week
      <store>/rejected_rows/kind=events/part-<content hash>.parquet      quarantine, read as a set

A connection (``TableStore.connect``) is an in-memory DuckDB database holding one view per table,
``read_parquet('<store>/<table>/**/*.parquet', hive_partitioning = true, union_by_name = true)``, so every
query the assets run (SQL models, loaders, checks) reads the shared files unchanged. Writes go through
``rec_assets.warehouse`` and ``rec_assets.sqlmodels.runner``, which find the store of a connection with
``store_of(conn)``: a partition is computed in DuckDB, then written whole, atomically (filesystem: a
hidden temporary file in the partition's folder, fsync, rename; object store: one object written by
DuckDB's upload, visible only once complete). Replacing a partition is the Parquet form of
delete-then-insert: re-running a week rewrites its file and touches no other week. Files keep their
partition column too (self-describing); it always equals the folder's value.

What a file store does not give: a transaction across partitions. A multi-week write (an event
backfill) replaces week after week, each atomically; a failure midway leaves every week either old or
new, and a re-run converges. Writers of the same partition are not serialised here: the last complete
write wins, which is also what two delete-then-insert runs of one week do (both write the same rows).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

DUCKDB_STORE = "duckdb"
OBJECT_STORE_SCHEMES = ("s3://",)  # gs:// and r2:// go through the same httpfs S3 API; see deploy/README.md
PART_FILE = "part-0.parquet"
# Tables written as content-addressed increments (one file per write, named by its content) and read as a
# set: the same rejected row stored twice counts once, as INSERT OR IGNORE does in the DuckDB file.
SET_TABLES = frozenset({"rejected_rows"})

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_OPEN: dict[int, "TableStore"] = {}
_OPEN_LOCK = threading.Lock()


def is_duckdb_store(setting: str | None) -> bool:
    return (setting or "").strip().lower() in ("", DUCKDB_STORE)


def sql_literal(text: str) -> str:
    """A quoted SQL string literal (for paths in DDL and COPY, where DuckDB takes no bound parameter)."""
    return "'" + str(text).replace("'", "''") + "'"


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
    """One table store: an absolute filesystem path or an object-store URI, without a trailing slash."""

    location: str

    @classmethod
    def from_setting(cls, setting: str) -> "TableStore":
        text = setting.strip()
        if is_duckdb_store(text):
            raise ValueError("REC_TABLE_STORE=duckdb is the DuckDB file, not a Parquet table store")
        if text.startswith("file://"):
            text = text[len("file://"):]
        if not text.startswith(OBJECT_STORE_SCHEMES):
            if "://" in text:
                raise ValueError(f"REC_TABLE_STORE={setting!r}: use 'duckdb', a filesystem path or s3://bucket/prefix")
            text = str(Path(text).expanduser().resolve())
        text = text.rstrip("/")
        if "=" in text:
            raise ValueError(f"REC_TABLE_STORE={setting!r}: a '=' in the location would read as a hive partition")
        return cls(text)

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
            if self.is_object_store:
                configure_object_store(conn)
            else:
                Path(self.location).mkdir(parents=True, exist_ok=True)
            for table in self.tables(conn):
                self.refresh_view(conn, table)
            with _OPEN_LOCK:
                _OPEN[id(conn)] = self
            yield conn
        finally:
            with _OPEN_LOCK:
                _OPEN.pop(id(conn), None)
            conn.close()

    def files(self, conn: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
        return sorted(row[0] for row in conn.execute("SELECT file FROM glob($pattern)", {"pattern": pattern}).fetchall())

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
        name = _identifier(table)
        if not self.files(conn, self.table_glob(table)):
            conn.execute(f"DROP VIEW IF EXISTS {name}")
            return
        distinct = "DISTINCT " if table in SET_TABLES else ""
        conn.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT {distinct}* FROM read_parquet("
            f"{sql_literal(self.table_glob(table))}, hive_partitioning = true, union_by_name = true)"
        )

    # --- writes ------------------------------------------------------------------------------------------------

    def write(self, conn: duckdb.DuckDBPyConnection, relation: str, uri: str) -> None:
        """Write the rows of ``relation`` (a table or view of ``conn``) as one Parquet file at ``uri``, whole."""
        source = _identifier(relation)
        options = "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        if self.is_object_store:
            conn.execute(f"COPY {source} TO {sql_literal(uri)} {options}")
            return
        final = Path(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.stem}.{uuid.uuid4().hex}.tmp")  # never matches *.parquet
        try:
            conn.execute(f"COPY {source} TO {sql_literal(str(temporary))} {options}")
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def remove(self, conn: duckdb.DuckDBPyConnection, uri: str, empty_like: str) -> None:
        """Retire a partition file: unlink it on a filesystem; on an object store (DuckDB cannot delete
        objects) overwrite it with no rows of ``empty_like``'s columns, which reads as an empty partition."""
        if not self.is_object_store:
            Path(uri).unlink(missing_ok=True)
            return
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _store_empty AS SELECT * FROM {_identifier(empty_like)} WHERE false")
        self.write(conn, "_store_empty", uri)
        conn.execute("DROP TABLE _store_empty")


def store_of(conn: duckdb.DuckDBPyConnection) -> TableStore | None:
    """The Parquet table store behind a connection made by ``TableStore.connect``; None for a DuckDB file."""
    return _OPEN.get(id(conn))


def configure_object_store(conn: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs and create the S3 secret from the standard AWS environment variables.

    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (optionally ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL`` for MinIO and other S3-compatible stores): a config secret. Without keys: the AWS
    credential chain (instance profile, IRSA web identity on EKS, ~/.aws), which needs the ``aws`` extension.
    Extensions are installed once per image (``INSTALL httpfs; INSTALL aws``); a machine offline loads them
    from its extension folder.
    """
    _load_extension(conn, "httpfs")
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID"):
        fields = {"KEY_ID": env["AWS_ACCESS_KEY_ID"], "SECRET": env.get("AWS_SECRET_ACCESS_KEY", "")}
        if env.get("AWS_SESSION_TOKEN"):
            fields["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            fields["REGION"] = region
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            fields["ENDPOINT"] = re.sub(r"^https?://", "", endpoint).rstrip("/")
            fields["URL_STYLE"] = "path"
            fields["USE_SSL"] = "false" if endpoint.startswith("http://") else "true"
        body = ", ".join(f"{k} {v if k == 'USE_SSL' else sql_literal(v)}" for k, v in fields.items())
        conn.execute(f"CREATE OR REPLACE SECRET rec_table_store (TYPE s3, PROVIDER config, {body})")
    else:
        _load_extension(conn, "aws")
        conn.execute("CREATE OR REPLACE SECRET rec_table_store (TYPE s3, PROVIDER credential_chain)")


def _load_extension(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        conn.execute(f"LOAD {name}")
    except duckdb.Error:
        conn.execute(f"INSTALL {name}")
        conn.execute(f"LOAD {name}")
