"""How the Parquet table store reaches ``s3://``: DuckDB's httpfs, or pyarrow's S3 filesystem (pure code).

``REC_OBJECT_STORE_CLIENT`` is read in one place, ``open_client``, when a connection opens: ``httpfs`` (DuckDB
globs, reads and writes s3:// itself), ``pyarrow`` (``pyarrow.fs.S3FileSystem`` lists, writes and deletes
objects; DuckDB scans Arrow datasets registered on the connection) or ``auto`` (the default: httpfs when the
extension loads without installing, else pyarrow). Both take credentials as ``AwsSettings``: the warehouse
resource's fields (bound with ``EnvVar`` at launch) over the standard AWS variables; none is logged or put in an
error message (``redact``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

CLIENT_SETTING = "REC_OBJECT_STORE_CLIENT"
AUTO, HTTPFS, PYARROW = "auto", "httpfs", "pyarrow"
CLIENTS = (AUTO, HTTPFS, PYARROW)
SCHEME = "s3://"
ROW_GROUP_SIZE = 122880
COPY_OPTIONS = f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
CREDENTIAL_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
T = TypeVar("T")


class ObjectStoreError(OSError):
    """A failed object-store operation, naming the client; its message never holds a credential."""


def sql_literal(text: str) -> str:
    """A quoted SQL string literal (for paths in DDL and COPY, where DuckDB takes no bound parameter)."""
    return "'" + str(text).replace("'", "''") + "'"


def redact(text: str, aws: AwsSettings | None = None) -> str:
    """``text`` with the value of every AWS credential variable, and of ``aws``'s credentials, replaced by ``***``."""
    secrets = [os.environ.get(name) for name in CREDENTIAL_VARIABLES]
    if aws is not None:
        secrets += [aws.secret, aws.session_token, aws.key_id]
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return text


def _attempt(client: str, action: str, call: Callable[[], T], aws: AwsSettings | None = None) -> T:
    """``call()``; a failure re-raised as ``ObjectStoreError`` naming the client, redacted and unchained (so no
    original message, which might quote a secret, travels along as context)."""
    try:
        return call()
    except (OSError, pa.ArrowException, duckdb.Error) as error:
        message = f"{CLIENT_SETTING}={client}: cannot {action}: {type(error).__name__}: {redact(str(error), aws)}"
    raise ObjectStoreError(message)


def client_setting(value: str | None) -> str:
    """The checked value of ``REC_OBJECT_STORE_CLIENT`` (empty: auto)."""
    choice = (value or AUTO).strip().lower()
    if choice not in CLIENTS:
        raise ValueError(f"{CLIENT_SETTING}={value!r} is not one of {', '.join(CLIENTS)}")
    return choice


def duckdb_glob(conn: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
    return sorted(row[0] for row in conn.execute("SELECT file FROM glob($pattern)", {"pattern": pattern}).fetchall())


def read_parquet_sql(glob: str) -> str:
    return f"read_parquet({sql_literal(glob)}, hive_partitioning = true, union_by_name = true)"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """DuckDB's glob as a regex: ``*`` and ``?`` within one path segment, a ``**`` segment any number of them."""
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append("(?:[^/]+/)*")
        else:
            parts.append("".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment) + "/")
    return re.compile("".join(parts)[:-1])


class HttpfsClient:
    """DuckDB's httpfs extension: DuckDB globs, reads and writes ``s3://`` itself (``configure_object_store``)."""

    name = HTTPFS

    def files(self, conn: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
        return duckdb_glob(conn, pattern)

    def write(self, conn: duckdb.DuckDBPyConnection, source: str, uri: str) -> None:
        conn.execute(f"COPY {source} TO {sql_literal(uri)} {COPY_OPTIONS}")

    def remove(self, conn: duckdb.DuckDBPyConnection, uri: str, empty_like: str) -> None:
        """DuckDB cannot delete objects: overwrite with no rows of ``empty_like``'s columns (an empty partition)."""
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _store_empty AS SELECT * FROM {empty_like} WHERE false")
        self.write(conn, "_store_empty", uri)
        conn.execute("DROP TABLE _store_empty")

    def scan(self, conn: duckdb.DuckDBPyConnection, table: str, glob: str, files: list[str]) -> str:
        return read_parquet_sql(glob)

    def drop(self, conn: duckdb.DuckDBPyConnection, table: str) -> None:
        """Nothing registered."""


class ArrowClient:
    """``pyarrow.fs.S3FileSystem`` lists, writes and deletes objects; DuckDB scans each table's files as an Arrow
    dataset registered on the connection. That dataset holds the files listed when the view was (re)defined:
    this connection's writes refresh it, other workers' writes show in the next connection."""

    name = PYARROW

    def __init__(self, filesystem: pafs.FileSystem, aws: AwsSettings | None = None) -> None:
        self.fs = filesystem
        self.aws = aws  # whose credentials its error messages are redacted of

    def __repr__(self) -> str:  # never the filesystem's options
        return f"ArrowClient({type(self.fs).__name__})"

    def files(self, conn: duckdb.DuckDBPyConnection, pattern: str) -> list[str]:
        path = pattern.removeprefix(SCHEME)
        base = re.split(r"[*?]", path, maxsplit=1)[0].rsplit("/", 1)[0]
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        infos = _attempt(PYARROW, f"list {SCHEME}{base}", lambda: self.fs.get_file_info(selector), self.aws)
        regex = glob_regex(path)
        return sorted(SCHEME + i.path for i in infos if i.type == pafs.FileType.File and regex.fullmatch(i.path))

    def write(self, conn: duckdb.DuckDBPyConnection, source: str, uri: str) -> None:
        """The rows as one Parquet object, serialised in memory first, then uploaded whole: a failure leaves no
        object (an upload is visible only when complete)."""
        conn.abort()  # a caller's unfinished execute() result, which a new relation may not interleave with
        rows = conn.sql(f"SELECT * FROM {source}").to_arrow_reader()
        sink = pa.BufferOutputStream()
        with pq.ParquetWriter(sink, rows.schema, compression="zstd") as parquet:
            for batch in rows:
                parquet.write_batch(batch, row_group_size=ROW_GROUP_SIZE)
        data = sink.getvalue()

        def upload() -> None:
            with self.fs.open_output_stream(uri.removeprefix(SCHEME)) as out:
                out.write(data)

        _attempt(PYARROW, f"write {uri}", upload, self.aws)

    def remove(self, conn: duckdb.DuckDBPyConnection, uri: str, empty_like: str) -> None:
        """Delete the object (gone already: nothing to do). pyarrow then keeps the emptied folder as an empty
        ``<folder>/`` marker object, which no listing counts: only ``*.parquet`` files are."""
        def delete() -> None:
            try:
                self.fs.delete_file(uri.removeprefix(SCHEME))
            except FileNotFoundError:
                pass

        _attempt(PYARROW, f"delete {uri}", delete, self.aws)

    def scan(self, conn: duckdb.DuckDBPyConnection, table: str, glob: str, files: list[str]) -> str:
        """Register ``files`` as one dataset, columns unified by name (as ``union_by_name``); every file holds its
        partition column, so no hive partitioning is needed. Returns the registered name."""
        def dataset() -> ds.Dataset:
            factory = ds.FileSystemDatasetFactory(self.fs, [f.removeprefix(SCHEME) for f in files],
                                                  ds.ParquetFileFormat())
            return factory.finish(factory.inspect(promote_options="permissive"))

        name = f"_store_scan_{table}"
        conn.abort()  # as in write
        conn.register(name, _attempt(PYARROW, f"read the schemas of {glob}", dataset, self.aws))
        return f'"{name}"'

    def drop(self, conn: duckdb.DuckDBPyConnection, table: str) -> None:
        try:
            conn.unregister(f"_store_scan_{table}")
        except duckdb.Error:
            pass


ObjectStoreClient = HttpfsClient | ArrowClient


def open_client(conn: duckdb.DuckDBPyConnection, setting: str, aws: AwsSettings | None = None) -> ObjectStoreClient:
    """The client ``setting`` (``REC_OBJECT_STORE_CLIENT``) names, set up on ``conn`` with ``aws`` (None: the
    AWS variables, read now); ``auto``: httpfs when it (and, without keys, the ``aws`` extension) loads without
    installing, else pyarrow."""
    aws = aws if aws is not None else AwsSettings.from_environment()
    choice = client_setting(setting)
    if choice == AUTO:
        ready = _loads(conn, "httpfs") and (bool(aws.key_id) or _loads(conn, "aws"))
        choice = HTTPFS if ready else PYARROW
    if choice == HTTPFS:
        configure_object_store(conn, aws)
        return HttpfsClient()
    return ArrowClient(s3_filesystem(aws), aws)


@dataclass(frozen=True)
class AwsSettings:
    """What both clients need to reach S3 (never logged: the repr shows no value). Without a key id: the AWS
    credential chain (IRSA web identity, instance profile, ~/.aws)."""

    key_id: str | None = field(default=None, repr=False)
    secret: str = field(default="", repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str | None = None
    endpoint: str | None = None  # AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL: MinIO, moto and other S3-compatible stores

    @classmethod
    def from_environment(cls) -> AwsSettings:
        """The standard AWS variables of this process."""
        env = os.environ
        return cls(env.get("AWS_ACCESS_KEY_ID") or None, env.get("AWS_SECRET_ACCESS_KEY", ""),
                   env.get("AWS_SESSION_TOKEN") or None, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                   env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"))

    def over(self, fallback: AwsSettings) -> AwsSettings:
        """These settings, each empty one taken from ``fallback``; keys travel as a pair (a key id given here
        never meets a secret from elsewhere)."""
        keys = (self.key_id, self.secret, self.session_token) if self.key_id else (
            fallback.key_id, fallback.secret, fallback.session_token)
        return AwsSettings(*keys, self.region or fallback.region, self.endpoint or fallback.endpoint)


def s3_filesystem(aws: AwsSettings) -> pafs.S3FileSystem:
    """``pyarrow.fs.S3FileSystem`` from ``aws``: keys (else the AWS credential chain: IRSA web identity,
    instance profile, ~/.aws), region and endpoint."""
    options: dict[str, str] = {}
    if aws.key_id:
        options.update(access_key=aws.key_id, secret_key=aws.secret)
        if aws.session_token:
            options["session_token"] = aws.session_token
    if aws.region:
        options["region"] = aws.region
    if aws.endpoint:
        parts = urlsplit(aws.endpoint if "://" in aws.endpoint else f"https://{aws.endpoint}")
        options.update(endpoint_override=parts.netloc + parts.path.rstrip("/"), scheme=parts.scheme)
    return _attempt(PYARROW, "configure S3FileSystem from the AWS settings", lambda: pafs.S3FileSystem(**options),
                    aws)


def configure_object_store(conn: duckdb.DuckDBPyConnection, aws: AwsSettings) -> None:
    """Load httpfs and create the S3 secret from ``aws``.

    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (optionally ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL`` for MinIO and other S3-compatible stores): a config secret. Without keys: the AWS
    credential chain (instance profile, IRSA web identity on EKS, ~/.aws), which needs the ``aws`` extension.
    Extensions are installed once per image (``INSTALL httpfs; INSTALL aws``); a machine offline loads them
    from its extension folder.
    """
    _load_extension(conn, "httpfs")
    if aws.key_id:
        fields = {"KEY_ID": aws.key_id, "SECRET": aws.secret}
        if aws.session_token:
            fields["SESSION_TOKEN"] = aws.session_token
        if aws.region:
            fields["REGION"] = aws.region
        if aws.endpoint:
            fields["ENDPOINT"] = re.sub(r"^https?://", "", aws.endpoint).rstrip("/")
            fields["URL_STYLE"] = "path"
            fields["USE_SSL"] = "false" if aws.endpoint.startswith("http://") else "true"
        body = ", ".join(f"{k} {v if k == 'USE_SSL' else sql_literal(v)}" for k, v in fields.items())
        sql = f"CREATE OR REPLACE SECRET rec_table_store (TYPE s3, PROVIDER config, {body})"
    else:
        _load_extension(conn, "aws")
        sql = "CREATE OR REPLACE SECRET rec_table_store (TYPE s3, PROVIDER credential_chain)"
    _attempt(HTTPFS, "create DuckDB's S3 secret from the AWS settings", lambda: conn.execute(sql), aws)


def _loads(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether extension ``name`` loads without installing."""
    try:
        conn.execute(f"LOAD {name}")
    except duckdb.Error:
        return False
    return True


def _load_extension(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    if _loads(conn, name):
        return
    _attempt(HTTPFS, f"install DuckDB's {name} extension (offline? install it in the image, or set "
                     f"{CLIENT_SETTING}={PYARROW})", lambda: conn.execute(f"INSTALL {name}; LOAD {name}"))
