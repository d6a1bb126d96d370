"""Byte columns of an event file parsed into ids and timestamps, vectorised, a bad value costing only its row.

UTF-8 is validated column-wise, bisecting only a failing column down to its bad rows; ids and timestamps are cast by
Arrow's strict all-or-nothing casts per block, and only the blocks that hold a bad value are re-parsed by
regex-guarded DuckDB casts that give NULL instead of failing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rec_assets.sources.line_readers import decode_line

# Guards before DuckDB's casts, which on their own are too lenient ('1.5' -> 2, 'epoch', 'infinity').
_ID_PATTERN = "[0-9]{1,18}"
_UNIX_SECONDS_PATTERN = "-?[0-9]{1,11}"
_ISO_PATTERN = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    "([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?"
    "(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)
_PATTERN_PARAMS = {"id_pattern": _ID_PATTERN, "unix_pattern": _UNIX_SECONDS_PATTERN, "iso_pattern": _ISO_PATTERN}
# Block size for finding the rows with invalid UTF-8: a failed cast is retried in halves down to single rows.
_UTF8_BLOCK_ROWS = 1 << 16
# Block size for parsing ids and timestamps: only blocks holding a bad value take the slower guarded path.
_PARSE_BLOCK_ROWS = 1 << 16


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def timestamp_sql(column: str) -> str:
    """DuckDB expression: the VARCHAR column parsed to TIMESTAMPTZ (ISO-8601, naive = UTC, or integer Unix
    seconds), NULL when it does not parse. Uses the $unix_pattern and $iso_pattern parameters."""
    value = f"trim({quote_ident(column)})"
    return (
        f"CASE WHEN regexp_full_match({value}, $unix_pattern) THEN to_timestamp(CAST({value} AS BIGINT)) "
        f"WHEN regexp_full_match({value}, $iso_pattern) THEN TRY_CAST({value} AS TIMESTAMPTZ) END"
    )


def id_sql(column: str) -> str:
    value = f"trim({quote_ident(column)})"
    return f"CASE WHEN regexp_full_match({value}, $id_pattern) THEN CAST({value} AS BIGINT) END"


def duckdb_utc() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose session time zone is UTC, so naive timestamps mean UTC."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def int64_ids(ids: Any) -> pa.Array | None:
    """Known ids from a set, list, numpy array, pandas Series/Index or Arrow array; None stays None."""
    if ids is None:
        return None
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if isinstance(ids, pa.Array):
        return ids.cast(pa.int64())
    if isinstance(ids, (set, frozenset)):
        ids = list(ids)
    return pa.array(np.asarray(ids, dtype="int64"))


def _fast_id(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return values.cast(pa.int64())


def _fast_timestamp(values: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return values.cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pc.multiply(values.cast(pa.int64()), 1_000_000).cast(pa.timestamp("us", tz="UTC"))


def parse_ids(connection: duckdb.DuckDBPyConnection, text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Integer ids (int64) from a text column; null where a value is not a plain non-negative integer."""
    return _parse_column(connection, text, _fast_id, id_sql("v"), ["id_pattern"])


def parse_timestamps(connection: duckdb.DuckDBPyConnection, text: pa.ChunkedArray) -> pa.ChunkedArray:
    """UTC timestamps (ISO-8601, naive = UTC, or integer Unix seconds) from a text column; null where one does not
    parse."""
    return _parse_column(connection, text, _fast_timestamp, timestamp_sql("v"), ["unix_pattern", "iso_pattern"])


def _parse_column(
    connection: duckdb.DuckDBPyConnection,
    text: pa.ChunkedArray,
    fast: Any,
    guarded_sql: str,
    pattern_names: list[str],
) -> pa.ChunkedArray:
    """Parse a text column: Arrow's strict cast per block (fast), and the regex-guarded DuckDB cast (NULL on bad
    input) only for the blocks where Arrow's all-or-nothing cast fails, i.e. the blocks holding a bad value."""
    try:
        return fast(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    blocks = [text.slice(begin, _PARSE_BLOCK_ROWS) for begin in range(0, len(text), _PARSE_BLOCK_ROWS)]
    parsed: list[pa.ChunkedArray | None] = []
    slow: list[int] = []
    for index, block in enumerate(blocks):
        try:
            parsed.append(fast(block))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed.append(None)
            slow.append(index)
    slow_values = pa.chunked_array([chunk for index in slow for chunk in blocks[index].chunks], pa.string())
    connection.register("slow_values", pa.table({"v": slow_values}))
    guarded = connection.sql(
        f"SELECT {guarded_sql} AS v FROM slow_values", params={name: _PATTERN_PARAMS[name] for name in pattern_names}
    ).to_arrow_table().column("v")
    connection.unregister("slow_values")
    offset = 0
    for index in slow:
        parsed[index] = guarded.slice(offset, len(blocks[index]))
        offset += len(blocks[index])
    target = next(block.type for block in parsed if block is not None and block.type != pa.null())
    return pa.chunked_array([chunk.cast(target) for block in parsed for chunk in block.chunks], target)


def to_bool(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.fill_null(False).to_numpy(zero_copy_only=False)


def filled_int64(values: pa.ChunkedArray) -> np.ndarray:
    """The int64 values as numpy; slots that are null hold arbitrary values (their rows are already marked bad)."""
    array = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if array.null_count == 0:
        return array.to_numpy()
    data = np.frombuffer(array.buffers()[1], dtype=np.int64, count=array.offset + len(array))
    return data[array.offset:].copy()


def epoch_micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def utf8_column(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The binary column as UTF-8 strings (invalid values null) and a mask of the rows whose bytes are invalid."""
    bad = np.zeros(len(column), dtype=bool)
    try:
        return column.cast(pa.string()), bad
    except pa.ArrowInvalid:
        pass
    offset = 0
    for chunk in column.chunks:
        for begin in range(0, len(chunk), _UTF8_BLOCK_ROWS):
            _find_invalid_utf8(chunk.slice(begin, _UTF8_BLOCK_ROWS), offset + begin, bad)
        offset += len(chunk)
    cleaned = pc.if_else(pa.array(bad), pa.scalar(None, pa.binary()), column)
    return cleaned.cast(pa.string()), bad


def _find_invalid_utf8(values: pa.Array, offset: int, bad: np.ndarray) -> None:
    try:
        values.cast(pa.string())
        return
    except pa.ArrowInvalid:
        pass
    if len(values) <= 64:
        for index, value in enumerate(values.to_pylist()):
            if value is not None and decode_line(value) is None:
                bad[offset + index] = True
        return
    half = len(values) // 2
    _find_invalid_utf8(values.slice(0, half), offset, bad)
    _find_invalid_utf8(values.slice(half), offset + half, bad)
