"""Validation at the door: every source's files are read through here into typed tables plus a rejected-rows table.

Two modes, chosen by the caller:

- ``"fail"``: the first bad row (in file order) raises :class:`IngestionError`, whose message names the file, the
  1-based line (the header is line 1) and the reason, e.g. ``ratings.csv line 57: timestamp 'abc' does not parse``.
- ``"quarantine"``: bad rows are dropped into a rejected table (columns ``REJECTED_COLUMNS``) with a short reason code
  from :class:`Reason` and a human-readable detail; the caller decides whether the rejected share is too high.

Problems with a file as a whole (a missing file, missing required columns, an undecodable header) are fatal in both
modes.

Large event files are read vectorised (10 M rows, 330 MB: 4-7 s and 1.4-1.7 GB peak on 2 cores, ~15 s when busy):
pyarrow's CSV parser with every column as raw bytes, so a bad byte cannot abort the read; UTF-8 validated column-wise,
bisecting only a failing column down to its bad rows; ids and timestamps cast by Arrow's strict all-or-nothing casts
per 65,536-row block, with only the blocks that hold a bad value re-parsed by regex-guarded DuckDB casts that give
NULL instead of failing; catalogue, user, future and duplicate checks as numpy/Arrow masks. Row i of the parsed table
is mapped back to its file line from the lines pyarrow skipped as invalid, so line numbers are exact for plain CSV.
Unsupported, and documented: quoted fields that contain line breaks. Such rows are rejected as ``embedded_newline``,
and the line numbers reported after one count records, not physical lines.
"""

from __future__ import annotations

import csv
import hashlib
import json
import mmap
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rec_assets.sources.layout import LIST_FIELDS, TITLE_FIELDS

MODES: tuple[str, ...] = ("fail", "quarantine")
REJECTED_COLUMNS: tuple[str, ...] = ("file", "line", "reason", "raw", "detail")
FALLBACK_COUNT_PREFIX = "fallback_decoded_lines:"
EVENTS_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("title_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC"))]
)
EARLIEST_RELEASE_YEAR = 1880
# Announced titles can carry next year's (or the year after's) release date; anything later is a data error.
RELEASE_YEAR_SLACK = 2


class Reason:
    """Reason codes of rejected rows (the ``reason`` column); one code per kind of bad input."""

    MISSING_COLUMNS = "missing_columns"  # fatal in both modes; never appears in a rejected table
    FIELD_COUNT = "field_count"
    ENCODING = "encoding"
    EMBEDDED_NEWLINE = "embedded_newline"
    BAD_USER_ID = "bad_user_id"
    BAD_TITLE_ID = "bad_title_id"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_TITLE = "unknown_title"
    UNKNOWN_USER = "unknown_user"
    DUPLICATE = "duplicate"
    FUTURE = "future"
    NOT_JSON = "not_json"
    MISSING_TITLE_ID = "missing_title_id"
    DUPLICATE_TITLE_ID = "duplicate_title_id"
    BAD_CATEGORY = "bad_category"
    IMPLAUSIBLE_YEAR = "implausible_year"
    BAD_FIELD = "bad_field"
    DUPLICATE_USER_ID = "duplicate_user_id"
    IMPLAUSIBLE_TIMESTAMP = "implausible_timestamp"  # before TimestampBounds.earliest
    REJECTED_TITLE = "rejected_title"  # a cascade: the event's title was in the titles file but was rejected


#: Reasons that are not a fault of the row itself but of another row it depends on (reported apart from bad rows).
CASCADE_REASONS: frozenset[str] = frozenset({Reason.REJECTED_TITLE})


class IngestionError(ValueError):
    """Bad input stopped at the door. ``file``, ``line`` and ``reason`` are set when one row is to blame."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.file = file
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Rejected:
    """One rejected row. ``line`` is 1-based with the header as line 1; ``raw`` is the row's text."""

    file: str
    line: int
    reason: str
    raw: str
    detail: str = ""

    def message(self) -> str:
        return f"{self.file} line {self.line}: {self.detail or self.reason}"

    def error(self) -> IngestionError:
        return IngestionError(self.message(), file=self.file, line=self.line, reason=self.reason)


def rejected_frame(rows: Iterable[Rejected] = ()) -> pd.DataFrame:
    """The rejected rows as a DataFrame: file str, line int64, reason str, raw str, detail str; sorted by file, line."""
    rows = list(rows)
    frame = pd.DataFrame(
        {
            "file": pd.Series([r.file for r in rows], dtype="str"),
            "line": pd.Series([r.line for r in rows], dtype="int64"),
            "reason": pd.Series([r.reason for r in rows], dtype="str"),
            "raw": pd.Series([r.raw for r in rows], dtype="str"),
            "detail": pd.Series([r.detail for r in rows], dtype="str"),
        }
    )
    return frame.sort_values(["file", "line"], kind="stable", ignore_index=True)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


class RejectLog:
    """Collects the rejected rows of one read; ``finish`` returns them as a frame, or in fail mode raises the first.

    Rows are checked in several passes (parse, then cross-row checks such as duplicates), so the first bad row in
    file order is only known at the end; ``file_order`` ranks the files when a read spans several.
    """

    def __init__(self, mode: str, file_order: Sequence[str] = ()):
        self.mode = check_mode(mode)
        self.file_order = tuple(file_order)
        self.rows: list[Rejected] = []
        self.fallback_decoded: Counter[str] = Counter()

    def reject(self, file: str, line: int, reason: str, detail: str, raw: str) -> None:
        self.rows.append(Rejected(file=file, line=line, reason=reason, raw=raw, detail=detail))

    def decoded_by_fallback(self, file: str, lines: int = 1) -> None:
        """Count lines of ``file`` that were not valid UTF-8 and were decoded by :func:`decode_text`'s fallback."""
        self.fallback_decoded[file] += lines

    def encoding_counts(self) -> dict[str, int]:
        """``fallback_decoded_lines:<file>`` for every file that needed the fallback encoding."""
        return {f"{FALLBACK_COUNT_PREFIX}{file}": n for file, n in sorted(self.fallback_decoded.items())}

    def finish(self) -> pd.DataFrame:
        if self.mode == "fail" and self.rows:
            raise min(self.rows, key=self._position).error()
        return rejected_frame(self.rows)

    def _position(self, row: Rejected) -> tuple[int, int]:
        rank = self.file_order.index(row.file) if row.file in self.file_order else len(self.file_order)
        return rank, row.line


# --------------------------------------------------------------------------------------------------------------------
# Result types and the Source protocol


@dataclass
class TitlesRead:
    """``titles``: the columns of ``layout.TITLE_FIELDS``, typed as ``titles_frame`` says; ``counts``: what was
    kept, rejected and missing (``title_counts`` plus source-specific counts)."""

    titles: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class UsersRead:
    """``users``: user_id int64, then one object column per categorical feature (str or None)."""

    users: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def has_users_file(self) -> bool:
        return not self.counts.get("missing_users_file", 0)

    @property
    def known_user_ids(self) -> np.ndarray | None:
        """The ids to validate events against, or None when the source has no users file (then nothing is checked)."""
        return self.users["user_id"].to_numpy() if self.has_users_file else None


@dataclass
class EventsRead:
    """``events``: user_id int64, title_id int64, ts timestamp[us, UTC], in file order, only start <= ts < end.

    ``rejected`` holds the bad rows of the whole file (each once, with its first reason), wherever their timestamp
    falls. ``rows_read`` counts the data rows in the file (blank lines excluded).
    """

    events: pa.Table
    rejected: pd.DataFrame
    rows_read: int
    held_back: tuple["HeldBack", ...] = ()
    fallback_decoded_lines: int = 0

    def accounting(self) -> dict[str, int]:
        """Rows read = stored + quarantined + cascaded + held back: each term, by reason where there is one."""
        reasons = self.rejected["reason"].value_counts().to_dict() if len(self.rejected) else {}
        counts = {
            "rows_read": self.rows_read,
            "stored": self.events.num_rows,
            "quarantined": sum(n for r, n in reasons.items() if r not in CASCADE_REASONS),
            "cascaded": sum(n for r, n in reasons.items() if r in CASCADE_REASONS),
            "held_back": sum(h.rows for h in self.held_back),
        }
        counts.update({f"quarantined:{r}": int(n) for r, n in sorted(reasons.items()) if r not in CASCADE_REASONS})
        counts.update({f"cascaded:{r}": int(n) for r, n in sorted(reasons.items()) if r in CASCADE_REASONS})
        counts.update({f"held_back:{h.where}": h.rows for h in self.held_back})
        return counts


@dataclass(frozen=True)
class HeldBack:
    """Good event rows a read did not return because they fall outside its range (``before_range`` or
    ``after_range``, e.g. the data's last, incomplete week), with the first and last of their timestamps."""

    where: str
    rows: int
    first: datetime
    last: datetime

    def describe(self, label: str | None = None) -> str:
        return f"{self.rows} {label or self.where.replace('_', ' ')} ({self.first:%Y-%m-%d} .. {self.last:%Y-%m-%d})"


@dataclass
class TagsRead:
    """``tags``: title_id int64, tag str (stripped, lower-cased, never empty), ts datetime64[us, UTC]: one row per
    time a user applied a tag to a title, in file order. Sources without a tags file return an empty frame."""

    tags: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def tags_frame(title_ids: Sequence[int], tags: Sequence[str], ts: Sequence[datetime]) -> pd.DataFrame:
    return pd.DataFrame({
        "title_id": pd.Series(list(title_ids), dtype="int64"),
        "tag": pd.Series(list(tags), dtype="str"),
        "ts": pd.Series(pd.to_datetime(list(ts), utc=True), dtype="datetime64[us, UTC]"),
    })


@runtime_checkable
class Source(Protocol):
    name: str
    data_dir: Path

    def read_titles(self, mode: str = "quarantine", *, now: datetime | None = None) -> TitlesRead: ...

    def read_users(self, mode: str = "quarantine") -> UsersRead: ...

    def read_events(
        self,
        *,
        start: datetime | None,
        end: datetime | None,
        known_title_ids: Any,
        known_user_ids: Any,
        now: datetime,
        mode: str = "quarantine",
        earliest: datetime | None = None,
    ) -> EventsRead: ...

    def read_tags(self, mode: str = "quarantine", *, known_title_ids: Any, bounds: TimestampBounds) -> TagsRead: ...

    def event_span(self, bounds: TimestampBounds | None = None) -> tuple[date, date]: ...

    def fingerprint(self) -> str: ...


# --------------------------------------------------------------------------------------------------------------------
# Small helpers shared by the sources


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; naive datetimes are taken to be UTC already (the layout is UTC throughout)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


DEFAULT_EARLIEST_EVENT = "1990-01-01"
DEFAULT_FUTURE_SLACK_DAYS = 1


@dataclass(frozen=True)
class TimestampBounds:
    """The plausible range of event and tag timestamps: ``earliest <= ts <= latest``. Outside it a row is
    quarantined (``implausible_timestamp`` / ``future``), and it never moves the span or the partitions."""

    earliest: datetime
    latest: datetime

    @classmethod
    def for_run(cls, now: datetime, earliest: str = DEFAULT_EARLIEST_EVENT,
                future_slack_days: int = DEFAULT_FUTURE_SLACK_DAYS) -> "TimestampBounds":
        """Not before ``earliest`` (an ISO day or moment, naive = UTC), not after the run's clock plus the slack."""
        try:
            low = as_utc(datetime.fromisoformat(earliest))
        except ValueError:
            raise ValueError(f"earliest event time {earliest!r} is not an ISO-8601 date (YYYY-MM-DD)") from None
        return cls(earliest=low, latest=as_utc(now) + timedelta(days=future_slack_days))

    def problem(self, moment: datetime) -> tuple[str, str] | None:
        moment = as_utc(moment)
        if moment < self.earliest:
            return Reason.IMPLAUSIBLE_TIMESTAMP, (
                f"timestamp {moment.isoformat()} is before the earliest plausible time {self.earliest:%Y-%m-%d} "
                "(REC_EARLIEST_EVENT)")
        if moment > self.latest:
            return Reason.FUTURE, f"timestamp {moment.isoformat()} is after now ({self.latest.isoformat()})"
        return None


def plausible_years(now: datetime | None) -> tuple[int, int]:
    year = as_utc(now or datetime.now(timezone.utc)).year
    return EARLIEST_RELEASE_YEAR, year + RELEASE_YEAR_SLACK


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise IngestionError(f"{what}: required file {path.name} is missing from {path.parent}", file=path.name)
    return path


def decode_line(raw: bytes) -> str | None:
    """The line as text, or None when it is not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_text(raw: bytes) -> tuple[str, bool]:
    """The bytes as text and whether the fallback was needed: UTF-8, else cp1252 (what MovieLens 1M/10M and most
    Windows exports use; identical to latin-1 for accented letters), else latin-1 for cp1252's five undefined
    bytes. Every byte string decodes, so an accent in a title never costs the row."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), True
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def printable_raw(raw: bytes) -> str:
    """Raw bytes as text for the rejected table: invalid bytes shown as \\xNN escapes, line ending removed."""
    return raw.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line bytes without its line ending) for every physical line, a leading BOM dropped."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield number, raw.rstrip(b"\r\n")


@dataclass(frozen=True)
class CsvRow:
    line: int
    raw: str
    fields: list[str]


def read_small_csv(
    path: Path, required: Sequence[str], log: RejectLog
) -> tuple[list[str], list[CsvRow]]:
    """Header and rows of a small CSV (movies.csv, users.csv) read line by line so every row keeps its line number.

    Rows with invalid UTF-8 or the wrong number of fields go to ``log``; blank lines are skipped. Missing required
    columns are fatal. A quoted field may not contain a line break (unsupported, like the event files).
    """
    lines = iter_lines(path)
    header = _header_fields(path, next(lines, (1, b""))[1])
    _require_columns(path, header, required)
    rows: list[CsvRow] = []
    for number, text in _decoded_lines(path, lines, log):
        fields = next(csv.reader([text]))
        if len(fields) != len(header):
            log.reject(
                path.name, number, Reason.FIELD_COUNT, f"expected {len(header)} fields, found {len(fields)}", text
            )
            continue
        rows.append(CsvRow(line=number, raw=text, fields=[f.strip() for f in fields]))
    return header, rows


DAT_SEPARATOR = "::"


def read_small_dat(path: Path, names: Sequence[str], log: RejectLog) -> list[CsvRow]:
    """The rows of a MovieLens ``.dat`` file (``::``-separated, no header, no quoting; 1M/10M ship them in
    latin-1, which :func:`decode_text` handles). Fields are ``names`` in order; the last field may contain ``::``
    only if it is the only free-text one (it never is in MovieLens), so a row with another count is rejected."""
    rows: list[CsvRow] = []
    for number, text in _decoded_lines(path, iter_lines(path), log):
        fields = text.split(DAT_SEPARATOR)
        if len(fields) != len(names):
            log.reject(path.name, number, Reason.FIELD_COUNT,
                       f"expected {len(names)} '::'-separated fields ({','.join(names)}), found {len(fields)}", text)
            continue
        rows.append(CsvRow(line=number, raw=text, fields=[f.strip() for f in fields]))
    return rows


def _decoded_lines(path: Path, lines: Iterable[tuple[int, bytes]], log: RejectLog) -> Iterator[tuple[int, str]]:
    """Non-blank lines as text, each line that needed the fallback encoding counted in ``log``."""
    for number, raw in lines:
        text, fallback = decode_text(raw)
        if fallback:
            log.decoded_by_fallback(path.name)
        if text.strip():
            yield number, text


@dataclass(frozen=True)
class JsonLine:
    line: int
    raw: str
    value: dict[str, Any]


def read_jsonl(path: Path, log: RejectLog) -> list[JsonLine]:
    """The JSON objects of a JSON-lines file with their line numbers; other lines go to ``log``, blank lines skipped."""
    objects: list[JsonLine] = []
    for number, text in _decoded_lines(path, iter_lines(path), log):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            log.reject(path.name, number, Reason.NOT_JSON, f"not a JSON line ({error.msg})", text)
            continue
        if not isinstance(value, dict):
            log.reject(path.name, number, Reason.NOT_JSON, f"a JSON {type(value).__name__}, not an object", text)
            continue
        objects.append(JsonLine(line=number, raw=text, value=value))
    return objects


def read_tags_rows(
    path: Path, rows: Iterable[CsvRow], columns: tuple[int, int, int], log: RejectLog, *,
    known_title_ids: Any, bounds: "TimestampBounds",
) -> TagsRead:
    """Tag applications from parsed rows of a tags file; ``columns`` are the field indices of title id, tag and
    timestamp. Rows with a bad id, an unknown title, an empty tag or a timestamp outside ``bounds`` go to ``log``."""
    title_col, tag_col, ts_col = columns
    known = set(int(i) for i in (known_title_ids if known_title_ids is not None else []))
    ids: list[int] = []
    tags: list[str] = []
    stamps: list[datetime] = []
    empty = 0
    for row in rows:
        title_id = parse_int(row.fields[title_col])
        moment = parse_timestamp(row.fields[ts_col])
        tag = " ".join(row.fields[tag_col].split()).lower()
        if title_id is None:
            log.reject(path.name, row.line, Reason.BAD_TITLE_ID,
                       f"title id {row.fields[title_col]!r} is not an integer id", row.raw)
        elif title_id not in known:
            log.reject(path.name, row.line, Reason.UNKNOWN_TITLE, f"title id {title_id} is not in the catalogue",
                       row.raw)
        elif moment is None:
            log.reject(path.name, row.line, Reason.BAD_TIMESTAMP,
                       f"timestamp {row.fields[ts_col]!r} does not parse", row.raw)
        elif (problem := bounds.problem(moment)) is not None:
            log.reject(path.name, row.line, problem[0], problem[1], row.raw)
        elif not tag:
            empty += 1
        else:
            ids.append(title_id)
            tags.append(tag)
            stamps.append(moment)
    rejected = log.finish()
    frame = tags_frame(ids, tags, stamps)
    counts = {"tags": len(frame), "rejected": len(rejected), "empty_tags_skipped": empty,
              "titles_with_tags": int(frame["title_id"].nunique()), "distinct_tags": int(frame["tag"].nunique())}
    return TagsRead(tags=frame, rejected=rejected, counts=counts)


def no_tags(missing_file: bool = True) -> TagsRead:
    return TagsRead(tags=tags_frame([], [], []), rejected=rejected_frame(),
                    counts={"tags": 0, "rejected": 0, "missing_tags_file": int(missing_file)})


def parse_timestamp(text: str) -> datetime | None:
    """Integer Unix seconds or ISO-8601 (naive = UTC) as an aware UTC datetime; None when it does not parse."""
    text = text.strip()
    try:
        if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), tz=timezone.utc)
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        return None


def parse_int(value: Any) -> int | None:
    """An integer from a JSON int or a string of digits; None for anything else (bools, floats, text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _header_fields(path: Path, raw: bytes) -> list[str]:
    text = decode_text(raw)[0]
    if not text.strip():
        raise IngestionError(f"{path.name} line 1: no header (empty file?)", file=path.name, line=1,
                             reason=Reason.MISSING_COLUMNS)
    return [name.strip() for name in next(csv.reader([text]))]


def _require_columns(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        raise IngestionError(
            f"{path.name}: missing required columns {', '.join(missing)} (header: {','.join(header)})",
            file=path.name, line=1, reason=Reason.MISSING_COLUMNS,
        )


# --------------------------------------------------------------------------------------------------------------------
# Titles: the typed frame every source returns


def titles_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Typed titles: title_id int64; list fields object (lists of str); release_year Int64;
    acquisition_date datetime64[us] (a day, NaT when unknown); other text fields object (str or None)."""
    columns: dict[str, pd.Series] = {}
    for name in TITLE_FIELDS:
        values = [record.get(name) for record in records]
        if name == "title_id":
            columns[name] = pd.Series(values, dtype="int64")
        elif name == "release_year":
            columns[name] = pd.Series(values, dtype="Int64")
        elif name == "acquisition_date":
            days = np.array([v if v is not None else "NaT" for v in values], dtype="datetime64[D]")
            columns[name] = pd.Series(days.astype("datetime64[us]"))
        elif name in LIST_FIELDS:
            columns[name] = pd.Series([list(v or []) for v in values], dtype="object")
        else:
            columns[name] = pd.Series(values, dtype="object")
    return pd.DataFrame(columns)


def title_problem(record: dict[str, Any], now: datetime | None) -> tuple[str, str] | None:
    """The checks every source's titles pass after mapping: a known category and a plausible release year."""
    category = record.get("category")
    if category not in ("movie", "tv"):
        return Reason.BAD_CATEGORY, f"category {category!r} is not movie or tv"
    year = record.get("release_year")
    low, high = plausible_years(now)
    if year is not None and not low <= year <= high:
        return Reason.IMPLAUSIBLE_YEAR, f"release_year {year} is outside {low}..{high}"
    return None


def title_counts(titles: pd.DataFrame, rejected: pd.DataFrame) -> dict[str, int]:
    """What every TitlesRead counts: kept and rejected titles, per category, and each missing field."""
    counts = {"titles": len(titles), "rejected": len(rejected)}
    for category in ("movie", "tv"):
        counts[f"category_{category}"] = int((titles["category"] == category).sum())
    for name in ("title", "maturity_rating", "country", "release_year", "acquisition_date", "synopsis", "image"):
        counts[f"missing_{name}"] = int(titles[name].isna().sum())
    for name in sorted(LIST_FIELDS):
        counts[f"missing_{name}"] = int((titles[name].map(len) == 0).sum())
    return counts


def user_counts(users: pd.DataFrame, rejected: pd.DataFrame, *, missing_file: bool) -> dict[str, int]:
    counts = {"users": len(users), "rejected": len(rejected), "missing_users_file": int(missing_file)}
    for name in users.columns[1:]:
        counts[f"missing_{name}"] = int(users[name].isna().sum())
    return counts


def users_frame(ids: Sequence[int], features: dict[str, Sequence[str | None]]) -> pd.DataFrame:
    columns = {"user_id": pd.Series(list(ids), dtype="int64")}
    for name, values in features.items():
        columns[name] = pd.Series(list(values), dtype="object")
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------------------------------------------------
# Events: the vectorised path for large CSVs

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

# Reason codes in precedence order: a row gets the first that applies. 0 = good row, 1 = blank line (skipped).
_GOOD, _BLANK = 0, 1
_EVENT_REASONS: tuple[str, ...] = (
    "", "",
    Reason.FIELD_COUNT, Reason.EMBEDDED_NEWLINE, Reason.ENCODING, Reason.BAD_USER_ID, Reason.BAD_TITLE_ID,
    Reason.BAD_TIMESTAMP, Reason.REJECTED_TITLE, Reason.UNKNOWN_TITLE, Reason.UNKNOWN_USER,
    Reason.IMPLAUSIBLE_TIMESTAMP, Reason.FUTURE, Reason.DUPLICATE,
)
_CODE = {reason: code for code, reason in enumerate(_EVENT_REASONS) if reason}


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
        header, first_data_line = _header_fields(path, first_line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")), 2
    _require_columns(path, header, wanted)

    table, invalid_rows, misplaced_separator = _read_binary_csv(path, header, dat=bool(columns.dat_fields))
    names = table.column_names
    rows = table.num_rows

    codes = np.zeros(rows, dtype=np.int8)

    def mark(mask: np.ndarray, reason: str) -> None:
        codes[(codes == _GOOD) & mask] = _CODE[reason]

    empty_everywhere = np.ones(rows, dtype=bool)
    for name in names:
        empty_everywhere &= _to_bool(pc.equal(pc.binary_length(table.column(name)), 0))
    codes[empty_everywhere] = _BLANK
    mark(misplaced_separator, Reason.FIELD_COUNT)
    # Only a quoted field can hold a line break, so a file without a double quote needs no per-value search.
    if not columns.dat_fields and _file_contains(path, b'"'):
        has_newline = np.zeros(rows, dtype=bool)
        for name in names:
            has_newline |= _to_bool(pc.match_substring(table.column(name), "\n"))
            has_newline |= _to_bool(pc.match_substring(table.column(name), "\r"))
        mark(has_newline, Reason.EMBEDDED_NEWLINE)

    text_columns = {}
    for logical, name in zip(("u", "t", "ts"), wanted):
        text, bad = _utf8_column(table.column(name))
        mark(bad, Reason.ENCODING)
        text_columns[logical] = text
    # Other columns (a rating) are cosmetic here: bytes that are not UTF-8 there are counted, never a rejection.
    fallback_rows = np.zeros(rows, dtype=bool)
    for name in names:
        if name not in wanted:
            fallback_rows |= _utf8_column(table.column(name))[1]

    connection = duckdb_utc()
    try:
        user_ids = _parse_column(connection, text_columns.pop("u"), _fast_id, id_sql("v"), ["id_pattern"])
        title_ids = _parse_column(connection, text_columns.pop("t"), _fast_id, id_sql("v"), ["id_pattern"])
        stamps = _parse_column(
            connection, text_columns.pop("ts"), _fast_timestamp, timestamp_sql("v"), ["unix_pattern", "iso_pattern"]
        )
        mark(_to_bool(pc.or_kleene(user_ids.is_null(), pc.less(user_ids, 0))), Reason.BAD_USER_ID)
        mark(_to_bool(pc.or_kleene(title_ids.is_null(), pc.less(title_ids, 0))), Reason.BAD_TITLE_ID)
        mark(_to_bool(stamps.is_null()), Reason.BAD_TIMESTAMP)
        user_values = _filled_int64(user_ids)
        title_values = _filled_int64(title_ids)
        micros = _filled_int64(stamps.cast(pa.int64()))
        del user_ids, title_ids, stamps

        dropped_titles = int64_ids(rejected_title_ids)
        if dropped_titles is not None and len(dropped_titles):
            mark(_to_bool(pc.is_in(pa.array(title_values), value_set=dropped_titles)), Reason.REJECTED_TITLE)
        known_titles = int64_ids(known_title_ids)
        if known_titles is not None:
            mark(~_to_bool(pc.is_in(pa.array(title_values), value_set=known_titles)), Reason.UNKNOWN_TITLE)
        known_users = int64_ids(known_user_ids)
        if known_users is not None:
            mark(~_to_bool(pc.is_in(pa.array(user_values), value_set=known_users)), Reason.UNKNOWN_USER)
        if earliest is not None:
            mark(micros < _micros(as_utc(earliest)), Reason.IMPLAUSIBLE_TIMESTAMP)
        mark(micros > _micros(now_utc), Reason.FUTURE)

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
        ("before_range", micros < _micros(as_utc(start)) if start is not None else None),
        ("after_range", micros >= _micros(as_utc(end)) if end is not None else None),
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
            text = _utf8_column(table.column(name))[0]
            if alias == "ts":
                parsed[alias] = _parse_column(
                    connection, text, _fast_timestamp, timestamp_sql("v"), ["unix_pattern", "iso_pattern"]
                )
            else:
                parsed[alias] = _parse_column(connection, text, _fast_id, id_sql("v"), ["id_pattern"])
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
            misplaced |= _to_bool(pc.greater(pc.binary_length(table.column(name)), 0))
        table = table.drop_columns(separators)
        invalid_rows = [(number, len(header), (found + 1) // 2, text) for number, _, found, text in invalid_rows]
    return table, invalid_rows, misplaced


def _file_contains(path: Path, needle: bytes) -> bool:
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return mapped.find(needle) != -1


def _fast_id(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return values.cast(pa.int64())


def _fast_timestamp(values: pa.ChunkedArray) -> pa.ChunkedArray:
    try:
        return values.cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pc.multiply(values.cast(pa.int64()), 1_000_000).cast(pa.timestamp("us", tz="UTC"))


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


def _to_bool(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.fill_null(False).to_numpy(zero_copy_only=False)


def _filled_int64(values: pa.ChunkedArray) -> np.ndarray:
    """The int64 values as numpy; slots that are null hold arbitrary values (their rows are already marked bad)."""
    array = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if array.null_count == 0:
        return array.to_numpy()
    data = np.frombuffer(array.buffers()[1], dtype=np.int64, count=array.offset + len(array))
    return data[array.offset:].copy()


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _utf8_column(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
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
    candidates = good[_to_bool(pc.is_in(pa.array(keys), value_set=pa.array(repeated)))]
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
    for position, (index, line) in enumerate(zip(indices.tolist(), lines.tolist())):
        values = {name: bad_rows[name][position] for name in table.column_names}
        raw = context.separator.join(printable_raw(values[name] or b"") for name in table.column_names)
        reason = _EVENT_REASONS[codes[index]]
        if reason == Reason.EMBEDDED_NEWLINE:
            detail = "a quoted field spans lines (unsupported)"
        elif reason == Reason.FIELD_COUNT:
            detail = f"expected {len(table.column_names)} '{context.separator}'-separated fields"
        elif reason == Reason.ENCODING:
            detail = "invalid UTF-8 bytes in an id or timestamp"
        elif reason == Reason.BAD_USER_ID:
            detail = f"{user_col} {printable_raw(values[user_col])!r} is not an integer id"
        elif reason == Reason.BAD_TITLE_ID:
            detail = f"{title_col} {printable_raw(values[title_col])!r} is not an integer id"
        elif reason == Reason.BAD_TIMESTAMP:
            detail = f"{ts_col} {printable_raw(values[ts_col])!r} does not parse"
        elif reason == Reason.REJECTED_TITLE:
            detail = f"{title_col} {title_values[index]} was rejected from the titles file (see its rejected row)"
        elif reason == Reason.UNKNOWN_TITLE:
            detail = f"{title_col} {title_values[index]} is not in the catalogue"
        elif reason == Reason.UNKNOWN_USER:
            detail = f"{user_col} {user_values[index]} is not in {context.users_file}"
        elif reason == Reason.IMPLAUSIBLE_TIMESTAMP:
            detail = (f"{ts_col} {_iso(micros[index])} is before the earliest plausible time "
                      f"{context.earliest:%Y-%m-%d} (REC_EARLIEST_EVENT)")
        elif reason == Reason.FUTURE:
            detail = f"{ts_col} {_iso(micros[index])} is after now ({context.now.isoformat()})"
        else:
            first = int(line_of(np.array([first_of_duplicate[index]]))[0])
            detail = f"duplicate of line {first} (same {user_col}, {title_col}, {ts_col})"
        rejected.append(Rejected(file, line, reason, raw, detail))
    return rejected


def _iso(micros: int) -> str:
    return _aware(micros).isoformat()


def _aware(micros: int) -> datetime:
    return pd.Timestamp(int(micros), unit="us", tz="UTC").to_pydatetime()


def directory_fingerprint(data_dir: Path) -> str:
    """Content version of every file under ``data_dir``: a hash of each relative path, size and mtime.

    Size + mtime rather than a content hash so that versioning a 350 MB event file costs a stat, not a read; a copy
    that changes mtimes therefore reads as a new version (conservative: it can only cause a recompute).
    """
    digest = hashlib.sha256()
    for root, directories, files in os.walk(data_dir):
        directories.sort()
        for name in sorted(files):
            path = Path(root, name)
            stat = path.stat()
            digest.update(f"{path.relative_to(data_dir).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def require_directory(data_dir: Path | str | None, kind: str) -> Path:
    if data_dir is None:
        raise IngestionError(f"source {kind!r} needs a data directory; none was given (set REC_DATA_DIR)")
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise IngestionError(f"source {kind!r}: data directory {path} does not exist (set REC_DATA_DIR to the "
                             f"folder holding the source's files; README, 'Data sources', lists them)")
    return path
