"""Line-by-line readers for the small files (titles, users, tags): every row keeps its 1-based line number.

Text that is not UTF-8 is decoded as cp1252 (then latin-1) and counted per file, so an accent never costs a row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rec_assets.sources.frames import tags_frame
from rec_assets.sources.protocol import TagsRead, TimestampBounds, as_utc
from rec_assets.sources.rejects import IngestionError, Reason, RejectLog


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
    header = header_fields(path, next(lines, (1, b""))[1])
    require_columns(path, header, required)
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
    known_title_ids: Any, bounds: TimestampBounds,
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


_ID_REASONS = {"user": (Reason.BAD_USER_ID, Reason.DUPLICATE_USER_ID),
               "title": (Reason.BAD_TITLE_ID, Reason.DUPLICATE_TITLE_ID)}


def unique_id_rows(
    file: str, rows: Iterable[CsvRow], column: int, name: str, kind: str, log: RejectLog
) -> Iterator[tuple[int, CsvRow]]:
    """(id, row) of each row whose ``kind`` ("user" or "title") id, field ``column`` named ``name`` in the messages,
    is an integer not seen on an earlier row; the other rows go to ``log`` (``bad_*_id``, ``duplicate_*_id``)."""
    bad, duplicate = _ID_REASONS[kind]
    line_of_id: dict[int, int] = {}
    for row in rows:
        value = parse_int(row.fields[column])
        if value is None:
            log.reject(file, row.line, bad, f"{name} {row.fields[column]!r} is not an integer id", row.raw)
        elif value in line_of_id:
            log.reject(file, row.line, duplicate, f"{name} {value} repeats line {line_of_id[value]}", row.raw)
        else:
            line_of_id[value] = row.line
            yield value, row


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


def header_fields(path: Path, raw: bytes) -> list[str]:
    text = decode_text(raw)[0]
    if not text.strip():
        raise IngestionError(f"{path.name} line 1: no header (empty file?)", file=path.name, line=1,
                             reason=Reason.MISSING_COLUMNS)
    return [name.strip() for name in next(csv.reader([text]))]


def require_columns(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        raise IngestionError(
            f"{path.name}: missing required columns {', '.join(missing)} (header: {','.join(header)})",
            file=path.name, line=1, reason=Reason.MISSING_COLUMNS,
        )
