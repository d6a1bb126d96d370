"""The vectorised reader of large event files (CSV, or MovieLens ``::`` ``.dat``): typed events and rejected rows.

Line numbers are exact for plain CSV. Unsupported, and documented: quoted fields that contain line breaks (rejected as
``embedded_newline``; line numbers after one count records, not physical lines). Design: docs/design.md ("Validation
at the door").
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rec_assets.sources.column_parsing import (
    duckdb_utc,
    epoch_micros,
    filled_int64,
    int64_ids,
    parse_ids,
    parse_timestamps,
    to_bool,
    utf8_column,
)
from rec_assets.sources.line_readers import DAT_SEPARATOR, header_fields, printable_raw, require_columns
from rec_assets.sources.protocol import EventsRead, HeldBack, TimestampBounds, as_utc
from rec_assets.sources.rejects import IngestionError, Reason, Rejected, check_mode, rejected_frame

EVENTS_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("title_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC"))]
)
# Reason codes in precedence order: a row gets the first that applies. 0 = good row, 1 = blank line (skipped).
_GOOD, _BLANK = 0, 1
_EVENT_REASONS: tuple[str, ...] = (
    "", "",
    Reason.FIELD_COUNT, Reason.EMBEDDED_NEWLINE, Reason.ENCODING, Reason.BAD_USER_ID, Reason.BAD_TITLE_ID,
    Reason.BAD_TIMESTAMP, Reason.REJECTED_TITLE, Reason.UNKNOWN_TITLE, Reason.UNKNOWN_USER,
    Reason.IMPLAUSIBLE_TIMESTAMP, Reason.FUTURE, Reason.DUPLICATE,
)
_CODE = {reason: code for code, reason in enumerate(_EVENT_REASONS) if reason}


@dataclass(frozen=True)
class EventColumns:
    """Which header names of an event file hold the user id, the title id and the timestamp."""

    user_id: str = "user_id"
    title_id: str = "title_id"
    timestamp: str = "timestamp"
    # A '::'-separated file without a header (MovieLens 1M/10M ``ratings.dat``): the names of its fields in order.
    dat_fields: tuple[str, ...] = ()


def read_events_csv(
    path: Path,
    columns: EventColumns,
    *,
    start: datetime | None,
    end: datetime | None,
    known_title_ids: Any,
    known_user_ids: Any,
    now: datetime,
    mode: str,
    users_file: str = "users.csv",
    earliest: datetime | None = None,
    rejected_title_ids: Any = None,
) -> EventsRead:
    """Read and validate an event file. See the module docstring for the modes and the line-number contract.

    ``now`` is the latest plausible moment and ``earliest`` the earliest (``TimestampBounds``); ``rejected_title_ids``
    are titles the titles file listed but validation rejected: their events are a cascade, not unknown titles.
    Good rows outside ``[start, end)`` are not returned but counted in ``held_back``.
    """
    check_mode(mode)
    now_utc = as_utc(now)
    wanted = (columns.user_id, columns.title_id, columns.timestamp)
    if columns.dat_fields:
        header, first_data_line = list(columns.dat_fields), 1
    else:
        with open(path, "rb") as handle:
            first_line = handle.readline()
        header, first_data_line = header_fields(path, first_line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")), 2
    require_columns(path, header, wanted)

    table, invalid_rows, misplaced_separator = _read_binary_csv(path, header, dat=bool(columns.dat_fields))
    names = table.column_names
    rows = table.num_rows

    codes = np.zeros(rows, dtype=np.int8)

    def mark(mask: np.ndarray, reason: str) -> None:
        codes[(codes == _GOOD) & mask] = _CODE[reason]

    empty_everywhere = np.ones(rows, dtype=bool)
    for name in names:
        empty_everywhere &= to_bool(pc.equal(pc.binary_length(table.column(name)), 0))
    codes[empty_everywhere] = _BLANK
    mark(misplaced_separator, Reason.FIELD_COUNT)
    # Only a quoted field can hold a line break, so a file without a double quote needs no per-value search.
    if not columns.dat_fields and _file_contains(path, b'"'):
        has_newline = np.zeros(rows, dtype=bool)
        for name in names:
            has_newline |= to_bool(pc.match_substring(table.column(name), "\n"))
            has_newline |= to_bool(pc.match_substring(table.column(name), "\r"))
        mark(has_newline, Reason.EMBEDDED_NEWLINE)

    text_columns = {}
    for logical, name in zip(("u", "t", "ts"), wanted):
        text, bad = utf8_column(table.column(name))
        mark(bad, Reason.ENCODING)
        text_columns[logical] = text
    # Other columns (a rating) are cosmetic here: bytes that are not UTF-8 there are counted, never a rejection.
    fallback_rows = np.zeros(rows, dtype=bool)
    for name in names:
        if name not in wanted:
            fallback_rows |= utf8_column(table.column(name))[1]

    connection = duckdb_utc()
    try:
        user_ids = parse_ids(connection, text_columns.pop("u"))
        title_ids = parse_ids(connection, text_columns.pop("t"))
        stamps = parse_timestamps(connection, text_columns.pop("ts"))
        mark(to_bool(pc.or_kleene(user_ids.is_null(), pc.less(user_ids, 0))), Reason.BAD_USER_ID)
        mark(to_bool(pc.or_kleene(title_ids.is_null(), pc.less(title_ids, 0))), Reason.BAD_TITLE_ID)
        mark(to_bool(stamps.is_null()), Reason.BAD_TIMESTAMP)
        user_values = filled_int64(user_ids)
        title_values = filled_int64(title_ids)
        micros = filled_int64(stamps.cast(pa.int64()))
        del user_ids, title_ids, stamps

        dropped_titles = int64_ids(rejected_title_ids)
        if dropped_titles is not None and len(dropped_titles):
            mark(to_bool(pc.is_in(pa.array(title_values), value_set=dropped_titles)), Reason.REJECTED_TITLE)
        known_titles = int64_ids(known_title_ids)
        if known_titles is not None:
            mark(~to_bool(pc.is_in(pa.array(title_values), value_set=known_titles)), Reason.UNKNOWN_TITLE)
        known_users = int64_ids(known_user_ids)
        if known_users is not None:
            mark(~to_bool(pc.is_in(pa.array(user_values), value_set=known_users)), Reason.UNKNOWN_USER)
        if earliest is not None:
            mark(micros < epoch_micros(as_utc(earliest)), Reason.IMPLAUSIBLE_TIMESTAMP)
        mark(micros > epoch_micros(now_utc), Reason.FUTURE)

        first_of_duplicate = _mark_duplicates(codes, user_values, title_values, micros)
    finally:
        connection.close()

    line_of = _line_mapper([number for number, *_ in invalid_rows], first_data_line)
    context = _RejectContext(
        file=path.name, wanted=wanted, now=now_utc, earliest=as_utc(earliest) if earliest else None,
        users_file=users_file, separator=DAT_SEPARATOR if columns.dat_fields else ",",
    )
    rejected = _event_rejects(
        context, table, codes, line_of, first_of_duplicate, invalid_rows, user_values, title_values, micros,
    )
    if mode == "fail" and rejected:
        raise min(rejected, key=lambda r: r.line).error()

    good = codes == _GOOD
    keep = good.copy()
    held_back = []
    for where, outside in (
        ("before_range", micros < epoch_micros(as_utc(start)) if start is not None else None),
        ("after_range", micros >= epoch_micros(as_utc(end)) if end is not None else None),
    ):
        if outside is None:
            continue
        outside &= good
        keep &= ~outside
        if outside.any():
            held_back.append(HeldBack(where, int(outside.sum()), _aware(int(micros[outside].min())),
                                      _aware(int(micros[outside].max()))))
    events = pa.table(
        [pa.array(user_values[keep]), pa.array(title_values[keep]),
         pa.array(micros[keep]).cast(pa.timestamp("us", tz="UTC"))],
        schema=EVENTS_SCHEMA,
    )
    rows_read = int(rows - (codes == _BLANK).sum() + len(invalid_rows))
    return EventsRead(events=events, rejected=rejected_frame(rejected), rows_read=rows_read,
                      held_back=tuple(held_back), fallback_decoded_lines=int((fallback_rows & (codes != _BLANK)).sum()))


def event_span_csv(path: Path, columns: EventColumns, bounds: TimestampBounds | None = None) -> tuple[date, date]:
    """First event day and the day after the last, from every timestamp that parses and lies within ``bounds``:
    a row that validation will quarantine for its time never moves the span (nor the partitions built on it)."""
    stamps = _parsed_columns(path, {"ts": columns.timestamp}, columns)["ts"]
    if bounds is not None:
        stamps = stamps.filter(pc.and_(
            pc.greater_equal(stamps, pa.scalar(bounds.earliest, pa.timestamp("us", tz="UTC"))),
            pc.less_equal(stamps, pa.scalar(bounds.latest, pa.timestamp("us", tz="UTC"))),
        ))
    span = pc.min_max(stamps).as_py()
    if span["min"] is None:
        within = f" between {bounds.earliest:%Y-%m-%d} and {bounds.latest:%Y-%m-%d}" if bounds is not None else ""
        raise IngestionError(f"{path.name}: no event has a timestamp that parses{within}", file=path.name)
    return span["min"].date(), date.fromordinal(span["max"].date().toordinal() + 1)


def first_event_day_by_title(path: Path, columns: EventColumns) -> dict[int, date]:
    """Each title's first event day (UTC), from the rows whose ids and timestamp parse; other rows are ignored."""
    parsed = _parsed_columns(path, {"title_id": columns.title_id, "ts": columns.timestamp}, columns)
    parsed = parsed.filter(pc.and_(pc.is_valid(parsed["title_id"]), pc.is_valid(parsed["ts"])))
    firsts = parsed.group_by("title_id").aggregate([("ts", "min")])
    return {
        int(title_id): moment.date()
        for title_id, moment in zip(firsts["title_id"].to_pylist(), firsts["ts_min"].to_pylist())
    }


def _parsed_columns(path: Path, columns: dict[str, str], layout: EventColumns) -> pa.Table:
    """Id and timestamp columns of an event file parsed (null where they do not parse), renamed to the keys of
    ``columns`` (``"ts"`` is the timestamp). Malformed rows are skipped, nothing else is checked."""
    if layout.dat_fields:
        table = _read_binary_csv(path, list(layout.dat_fields), dat=True)[0].select(list(columns.values()))
    else:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns.values()), column_types={name: pa.binary() for name in columns.values()}
            ),
        )
    connection = duckdb_utc()
    try:
        parsed = {}
        for alias, name in columns.items():
            text = utf8_column(table.column(name))[0]
            if alias == "ts":
                parsed[alias] = parse_timestamps(connection, text)
            else:
                parsed[alias] = parse_ids(connection, text)
    finally:
        connection.close()
    return pa.table(parsed)


def _read_binary_csv(
    path: Path, header: list[str], dat: bool = False
) -> tuple[pa.Table, list[tuple[int, int, int, str]], np.ndarray]:
    """Every column as raw bytes, (line, expected fields, found fields, text) of each row pyarrow rejected, and a
    mask of the rows whose ``::`` separators were malformed (``dat`` files only).

    pyarrow reports an invalid row's line number only when parsing serially, so the file is parsed with threads
    first and again serially only when it has invalid rows. A ``.dat`` file (``::``, no header, no quoting) is parsed
    with ``:`` as the delimiter: its odd columns are the empty strings between the two colons, checked and dropped.
    """
    names = [f"\0sep{i}" if i % 2 else header[i // 2] for i in range(2 * len(header) - 1)] if dat else header
    for use_threads in (True, False):
        invalid_rows: list[tuple[int, int, int, str]] = []

        def on_invalid_row(row: Any) -> str:
            invalid_rows.append((row.number, row.expected_columns, row.actual_columns, row.text))
            return "skip"

        table = pacsv.read_csv(
            path,
            # Our own header names (stripped of spaces and a BOM), so pyarrow's reading of the header cannot differ.
            read_options=pacsv.ReadOptions(
                use_threads=use_threads, block_size=1 << 24, column_names=names, skip_rows=0 if dat else 1
            ),
            parse_options=pacsv.ParseOptions(
                invalid_row_handler=on_invalid_row, ignore_empty_lines=False,
                **({"delimiter": ":", "quote_char": False} if dat else {}),
            ),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.binary() for name in names}),
        )
        if not invalid_rows:
            break
        if all(number is not None for number, *_ in invalid_rows):
            break
        del table
    misplaced = np.zeros(table.num_rows, dtype=bool)
    if dat:
        separators = [name for name in names if name.startswith("\0sep")]
        for name in separators:
            misplaced |= to_bool(pc.greater(pc.binary_length(table.column(name)), 0))
        table = table.drop_columns(separators)
        invalid_rows = [(number, len(header), (found + 1) // 2, text) for number, _, found, text in invalid_rows]
    return table, invalid_rows, misplaced


def _file_contains(path: Path, needle: bytes) -> bool:
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return mapped.find(needle) != -1


def _line_mapper(invalid_lines: list[int], first_data_line: int = 2):
    """Row index of a parsed row -> its 1-based file line, given the lines pyarrow skipped as invalid rows and the
    line of the first data row (2 after a header, 1 in a file without one)."""
    skipped = np.sort(np.asarray(invalid_lines, dtype=np.int64))
    # skipped[j] - j - first_data_line is how many parsed rows come before the j-th skipped line.
    parsed_before = skipped - np.arange(len(skipped)) - first_data_line

    def line_of(row_indices: np.ndarray) -> np.ndarray:
        row_indices = np.asarray(row_indices, dtype=np.int64)
        return row_indices + first_data_line + np.searchsorted(parsed_before, row_indices, side="right")

    return line_of


def _mark_duplicates(
    codes: np.ndarray, user_values: np.ndarray, title_values: np.ndarray, micros: np.ndarray
) -> dict[int, int]:
    """Mark repeats of (user, title, ts) among the good rows as duplicates; returns row -> row of the first.

    A 64-bit hash of the three values finds the few candidate rows (one sort, no big hash table), and the candidates
    are then grouped on the exact values, so a hash collision cannot make a row a duplicate.
    """
    good = np.flatnonzero(codes == _GOOD)
    keys = _mix64(user_values[good], title_values[good], micros[good])
    ordered = np.sort(keys)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not len(repeated):
        return {}
    candidates = good[to_bool(pc.is_in(pa.array(keys), value_set=pa.array(repeated)))]
    frame = pd.DataFrame(
        {"i": candidates, "u": user_values[candidates], "t": title_values[candidates], "ts": micros[candidates]}
    )
    frame["first_i"] = frame.groupby(["u", "t", "ts"], sort=False)["i"].transform("min")
    repeats = frame[frame["i"] != frame["first_i"]]
    codes[repeats["i"].to_numpy()] = _CODE[Reason.DUPLICATE]
    return dict(zip(repeats["i"].tolist(), repeats["first_i"].tolist()))


def _mix64(*columns: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash per row of int64 columns (splitmix64 finaliser over a multiplicative combine)."""
    with np.errstate(over="ignore"):
        keys = np.zeros(len(columns[0]), dtype=np.uint64)
        for multiplier, column in zip((0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9), columns):
            keys = (keys ^ column.view(np.uint64)) * np.uint64(multiplier)
            keys ^= keys >> np.uint64(31)
    return keys


@dataclass(frozen=True)
class _RejectContext:
    """What the detail of a rejected event row names: the file, its columns, the bounds, the separator."""

    file: str
    wanted: tuple[str, str, str]
    now: datetime
    earliest: datetime | None
    users_file: str
    separator: str


# The detail of a rejected event row, per reason, filled in by ``_event_rejects``.
_EVENT_DETAILS: dict[str, str] = {
    Reason.EMBEDDED_NEWLINE: "a quoted field spans lines (unsupported)",
    Reason.FIELD_COUNT: "expected {fields} '{separator}'-separated fields",
    Reason.ENCODING: "invalid UTF-8 bytes in an id or timestamp",
    Reason.BAD_USER_ID: "{user_col} {user_text!r} is not an integer id",
    Reason.BAD_TITLE_ID: "{title_col} {title_text!r} is not an integer id",
    Reason.BAD_TIMESTAMP: "{ts_col} {ts_text!r} does not parse",
    Reason.REJECTED_TITLE: "{title_col} {title_id} was rejected from the titles file (see its rejected row)",
    Reason.UNKNOWN_TITLE: "{title_col} {title_id} is not in the catalogue",
    Reason.UNKNOWN_USER: "{user_col} {user_id} is not in {users_file}",
    Reason.IMPLAUSIBLE_TIMESTAMP: "{ts_col} {ts} is before the earliest plausible time {earliest} (REC_EARLIEST_EVENT)",
    Reason.FUTURE: "{ts_col} {ts} is after now ({now})",
    Reason.DUPLICATE: "duplicate of line {first_line} (same {user_col}, {title_col}, {ts_col})",
}


def _event_rejects(
    context: _RejectContext,
    table: pa.Table,
    codes: np.ndarray,
    line_of,
    first_of_duplicate: dict[int, int],
    invalid_rows: list[tuple[int, int, int, str]],
    user_values: np.ndarray,
    title_values: np.ndarray,
    micros: np.ndarray,
) -> list[Rejected]:
    file = context.file
    rejected = [
        Rejected(file, number, Reason.FIELD_COUNT, text, f"expected {expected} fields, found {actual}")
        for number, expected, actual, text in invalid_rows
    ]
    indices = np.flatnonzero(codes > _BLANK)
    if not len(indices):
        return rejected
    lines = line_of(indices)
    bad_rows = table.take(pa.array(indices)).to_pydict()
    user_col, title_col, ts_col = context.wanted
    shared = {
        "user_col": user_col, "title_col": title_col, "ts_col": ts_col, "users_file": context.users_file,
        "separator": context.separator, "fields": len(table.column_names), "now": context.now.isoformat(),
        "earliest": f"{context.earliest:%Y-%m-%d}" if context.earliest is not None else "",
    }
    for position, (index, line) in enumerate(zip(indices.tolist(), lines.tolist())):
        text = {name: printable_raw(bad_rows[name][position] or b"") for name in table.column_names}
        raw = context.separator.join(text.values())
        reason = _EVENT_REASONS[codes[index]]
        fields = dict(shared, user_id=user_values[index], title_id=title_values[index], user_text=text[user_col],
                      title_text=text[title_col], ts_text=text[ts_col])
        # Only a row with a parsed timestamp, or a duplicate, has these (a bad row's timestamp slot is arbitrary).
        if reason in (Reason.IMPLAUSIBLE_TIMESTAMP, Reason.FUTURE):
            fields["ts"] = _iso(micros[index])
        elif reason == Reason.DUPLICATE:
            fields["first_line"] = int(line_of(np.array([first_of_duplicate[index]]))[0])
        detail = _EVENT_DETAILS[reason].format(**fields)
        rejected.append(Rejected(file, line, reason, raw, detail))
    return rejected


def _iso(micros: int) -> str:
    return _aware(micros).isoformat()


def _aware(micros: int) -> datetime:
    return pd.Timestamp(int(micros), unit="us", tz="UTC").to_pydatetime()
