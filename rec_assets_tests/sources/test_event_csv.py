"""Event files are validated at the door: every kind of bad row, in both modes, with its file, line and reason."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rec_assets.sources.event_csv import EventColumns, event_span_csv, read_events_csv
from rec_assets.sources.rejects import REJECTED_COLUMNS, IngestionError, Reason, Rejected, rejected_frame

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
HEADER = b"user_id,title_id,timestamp\n"
GOOD_BEFORE = b"1,10,2025-01-06T13:45:00Z\n"  # line 2
GOOD_AFTER = b"2,20,1736171100\n"  # the line after the bad one


def write_events(tmp_path: Path, body: bytes, header: bytes = HEADER) -> Path:
    path = tmp_path / "events.csv"
    path.write_bytes(header + body)
    return path


def read(path: Path, mode: str = "quarantine", **overrides):
    options = dict(
        start=None, end=None, known_title_ids=[10, 20, 30], known_user_ids=[1, 2, 3], now=NOW, mode=mode,
    )
    options.update(overrides)
    return read_events_csv(path, EventColumns(), **options)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_good_rows_are_typed_in_file_order_and_every_timestamp_form_is_utc(tmp_path):
    path = write_events(
        tmp_path,
        b"1,10,2025-01-06T13:45:00Z\n"
        b"2,20,2025-01-06 15:45:00+02:00\n"  # an offset is converted to UTC
        b"3,30,2025-01-06T13:45:00\n"  # no offset: the layout is UTC
        b" 1 , 20 , 1736171100 \n"  # Unix seconds, padded
        b"1,30,2025-01-06T13:45:00.250Z\n",
    )
    result = read(path, mode="fail")
    assert result.events.schema == pa.schema(
        [("user_id", pa.int64()), ("title_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC"))]
    )
    assert result.events.column("user_id").to_pylist() == [1, 2, 3, 1, 1]
    assert result.events.column("title_id").to_pylist() == [10, 20, 30, 20, 30]
    assert result.events.column("ts").to_pylist() == [
        utc(2025, 1, 6, 13, 45), utc(2025, 1, 6, 13, 45), utc(2025, 1, 6, 13, 45), utc(2025, 1, 6, 13, 45),
        utc(2025, 1, 6, 13, 45, 0, 250_000),
    ]
    assert result.rows_read == 5
    assert result.rejected.empty
    assert list(result.rejected.columns) == list(REJECTED_COLUMNS)


# (bad line, reason, detail): each placed at line 3, between two good rows.
BAD_ROWS = [
    pytest.param(b"1,10\n", Reason.FIELD_COUNT, "expected 3 fields, found 2", id="too-few-fields"),
    pytest.param(b"1,10,2025-01-06T13:45:00Z,extra\n", Reason.FIELD_COUNT, "expected 3 fields, found 4",
                 id="too-many-fields"),
    pytest.param(b"abc,10,2025-01-06T13:45:00Z\n", Reason.BAD_USER_ID, "user_id 'abc' is not an integer id",
                 id="non-numeric-user"),
    pytest.param(b"-1,10,2025-01-06T13:45:00Z\n", Reason.BAD_USER_ID, "user_id '-1' is not an integer id",
                 id="negative-user"),
    pytest.param(b"1,10.5,2025-01-06T13:45:00Z\n", Reason.BAD_TITLE_ID, "title_id '10.5' is not an integer id",
                 id="fractional-title"),
    pytest.param(b"1,,2025-01-06T13:45:00Z\n", Reason.BAD_TITLE_ID, "title_id '' is not an integer id",
                 id="empty-title"),
    pytest.param(b"1,10,abc\n", Reason.BAD_TIMESTAMP, "timestamp 'abc' does not parse", id="garbage-timestamp"),
    pytest.param(b"1,10,2025-02-30T00:00:00Z\n", Reason.BAD_TIMESTAMP,
                 "timestamp '2025-02-30T00:00:00Z' does not parse", id="impossible-date"),
    pytest.param(b"1,10,1.5e9\n", Reason.BAD_TIMESTAMP, "timestamp '1.5e9' does not parse", id="float-seconds"),
    pytest.param(b"1,10,\xff\xfe2025\n", Reason.ENCODING, "invalid UTF-8 bytes", id="invalid-utf8"),
    pytest.param(b"1,99,2025-01-06T13:45:00Z\n", Reason.UNKNOWN_TITLE, "title_id 99 is not in the catalogue",
                 id="unknown-title"),
    pytest.param(b"99,10,2025-01-06T13:45:00Z\n", Reason.UNKNOWN_USER, "user_id 99 is not in users.csv",
                 id="unknown-user"),
    pytest.param(b"1,10,2026-01-01T00:00:01Z\n", Reason.FUTURE, "is after now", id="future"),
    pytest.param(GOOD_BEFORE, Reason.DUPLICATE, "duplicate of line 2", id="duplicate"),
    pytest.param(b'1,"10\n",2025-01-06T13:45:00Z\n', Reason.EMBEDDED_NEWLINE, "spans lines",
                 id="quoted-line-break"),
]


@pytest.mark.parametrize(("bad_line", "reason", "detail"), BAD_ROWS)
def test_quarantine_keeps_good_rows_and_rejects_the_bad_one_with_file_line_and_reason(
    tmp_path, bad_line, reason, detail
):
    result = read(write_events(tmp_path, GOOD_BEFORE + bad_line + GOOD_AFTER))
    assert result.events.column("user_id").to_pylist() == [1, 2]
    assert len(result.rejected) == 1
    rejected = result.rejected.iloc[0]
    assert (rejected["file"], rejected["line"], rejected["reason"]) == ("events.csv", 3, reason)
    assert detail in rejected["detail"]
    assert rejected["raw"].startswith(bad_line.split(b",")[0].decode())
    assert result.rows_read == 3


@pytest.mark.parametrize(("bad_line", "reason", "detail"), BAD_ROWS)
def test_fail_mode_raises_naming_file_line_and_reason(tmp_path, bad_line, reason, detail):
    with pytest.raises(IngestionError) as raised:
        read(write_events(tmp_path, GOOD_BEFORE + bad_line + GOOD_AFTER), mode="fail")
    assert str(raised.value).startswith("events.csv line 3: ")
    assert detail in str(raised.value)
    assert (raised.value.file, raised.value.line, raised.value.reason) == ("events.csv", 3, reason)


def test_invalid_utf8_keeps_the_raw_bytes_visible(tmp_path):
    result = read(write_events(tmp_path, GOOD_BEFORE + b"1,10,\xff\xfe2025\n"))
    assert result.rejected["raw"].tolist() == ["1,10,\\xff\\xfe2025"]


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_missing_required_columns_are_fatal_in_both_modes_and_named(tmp_path, mode):
    path = write_events(tmp_path, b"1,2025-01-06T13:45:00Z\n", header=b"user_id,ts\n")
    with pytest.raises(IngestionError, match=r"events\.csv: missing required columns title_id, timestamp"):
        read(path, mode=mode)


def test_an_empty_file_is_fatal(tmp_path):
    with pytest.raises(IngestionError, match="events.csv line 1: no header"):
        read(write_events(tmp_path, b"", header=b""))


def test_line_numbers_stay_exact_after_skipped_rows_and_blank_lines(tmp_path):
    path = write_events(
        tmp_path,
        GOOD_BEFORE  # 2
        + b"1,10\n"  # 3: wrong field count (pyarrow drops it from the table)
        + b"2,20,2025-01-06T13:45:00Z\n"  # 4
        + b"\n"  # 5: blank, skipped silently
        + b"1,10,1,2\n"  # 6: wrong field count
        + b"3,30,nope\n"  # 7
        + b"3,99,2025-01-06T13:45:00Z\n",  # 8
    )
    result = read(path)
    assert result.rejected[["line", "reason"]].values.tolist() == [
        [3, Reason.FIELD_COUNT], [6, Reason.FIELD_COUNT], [7, Reason.BAD_TIMESTAMP], [8, Reason.UNKNOWN_TITLE],
    ]
    assert result.rows_read == 6
    assert result.events.num_rows == 2


def test_crlf_line_endings_and_a_byte_order_mark_are_plain_csv(tmp_path):
    header = b"\xef\xbb\xbfuser_id,title_id,timestamp\r\n"
    path = write_events(tmp_path, b"1,10,1736171100\r\n2,20,bad\r\n", header=header)
    result = read(path)
    assert result.events.column("user_id").to_pylist() == [1]
    assert result.rejected[["line", "raw"]].values.tolist() == [[3, "2,20,bad"]]


def test_fail_mode_reports_the_first_bad_line_in_file_order(tmp_path):
    # The row at line 3 fails a late check (unknown title), line 4 an early one (field count): line 3 still wins.
    path = write_events(tmp_path, GOOD_BEFORE + b"1,99,2025-01-06T13:45:00Z\n" + b"1,10\n")
    with pytest.raises(IngestionError, match="^events.csv line 3: title_id 99 is not in the catalogue$"):
        read(path, mode="fail")


def test_a_row_with_several_problems_is_rejected_once_with_the_first_reason(tmp_path):
    result = read(write_events(tmp_path, b"99,99,2030-01-01T00:00:00Z\n"))
    assert result.rejected[["line", "reason"]].values.tolist() == [[2, Reason.UNKNOWN_TITLE]]


def test_window_is_half_open_and_rejects_come_from_the_whole_file(tmp_path):
    path = write_events(
        tmp_path,
        b"1,10,2025-01-05T23:59:59Z\n"  # before the window
        b"1,10,2025-01-06T00:00:00Z\n"  # start: in
        b"1,20,2025-01-12T23:59:59Z\n"  # in
        b"1,30,2025-01-13T00:00:00Z\n"  # end: out
        b"1,10,garbage\n"  # line 6: no timestamp, still reported
        b"1,99,2024-01-01T00:00:00Z\n"  # line 7: outside the window, still reported
        b"1,10,2025-01-06T00:00:00Z\n",  # line 8: duplicate of line 3 inside the window
    )
    result = read(path, start=utc(2025, 1, 6), end=utc(2025, 1, 13))
    assert result.events.column("ts").to_pylist() == [utc(2025, 1, 6), utc(2025, 1, 12, 23, 59, 59)]
    assert result.rejected[["line", "reason"]].values.tolist() == [
        [6, Reason.BAD_TIMESTAMP], [7, Reason.UNKNOWN_TITLE], [8, Reason.DUPLICATE],
    ]
    assert result.rows_read == 7


def test_open_ended_window_and_naive_bounds_mean_utc(tmp_path):
    path = write_events(tmp_path, b"1,10,2025-01-05T00:00:00Z\n1,10,2025-01-07T00:00:00Z\n")
    after = read(path, start=datetime(2025, 1, 6), end=None)
    assert after.events.column("ts").to_pylist() == [utc(2025, 1, 7)]
    before = read(path, start=None, end=datetime(2025, 1, 6))
    assert before.events.column("ts").to_pylist() == [utc(2025, 1, 5)]


def test_duplicates_keep_the_first_and_only_exact_repeats_count(tmp_path):
    path = write_events(
        tmp_path,
        b"1,10,2025-01-06T13:45:00Z\n"  # 2: kept
        b"1,10,2025-01-06T13:45:01Z\n"  # 3: another second, kept
        b"2,10,2025-01-06T13:45:00Z\n"  # 4: another user, kept
        b"1,10,1736171100\n"  # 5: the same instant as line 2 in Unix seconds: duplicate
        b"1,10,2025-01-06T13:45:00Z\n",  # 6: duplicate of line 2
    )
    result = read(path)
    assert result.events.column("user_id").to_pylist() == [1, 1, 2]
    assert result.rejected[["line", "reason", "detail"]].values.tolist() == [
        [5, Reason.DUPLICATE, "duplicate of line 2 (same user_id, title_id, timestamp)"],
        [6, Reason.DUPLICATE, "duplicate of line 2 (same user_id, title_id, timestamp)"],
    ]


def test_users_are_not_checked_without_a_users_file(tmp_path):
    result = read(write_events(tmp_path, b"12345,10,2025-01-06T13:45:00Z\n"), known_user_ids=None)
    assert result.events.column("user_id").to_pylist() == [12345]
    assert result.rejected.empty


def test_header_names_are_trimmed(tmp_path):
    result = read(write_events(tmp_path, b"1,10,1736171100\n", header=b"user_id, title_id , timestamp\n"), mode="fail")
    assert result.events.column("title_id").to_pylist() == [10]


def test_other_event_columns_are_allowed_in_any_order(tmp_path):
    path = write_events(tmp_path, b"2025-01-06T13:45:00Z,5,10,1\n", header=b"timestamp,rating,title_id,user_id\n")
    result = read(path, mode="fail")
    assert result.events.to_pylist() == [{"user_id": 1, "title_id": 10, "ts": utc(2025, 1, 6, 13, 45)}]


def test_bad_rows_deep_in_a_large_file_keep_their_exact_lines(tmp_path):
    # Several 65,536-row parse blocks: the bad rows take the slow path, the rest the vectorised one.
    rows = 200_000
    rng = np.random.default_rng(7)
    seconds = 1_736_000_000 + np.arange(rows)
    lines = [f"{u},{t},{s}\n".encode() for u, t, s in zip(rng.integers(1, 4, rows), rng.choice([10, 20, 30], rows),
                                                          seconds)]
    bad = {70_001: b"1,10,not-a-time\n", 150_000: b"1,\xc3\x28,1736000000\n", 199_990: b"1,10\n"}
    for index, line in bad.items():
        lines[index] = line
    result = read(write_events(tmp_path, b"".join(lines)))
    # lines[i] is file line i + 2 (the header is line 1).
    assert result.rejected[["line", "reason"]].values.tolist() == [
        [70_003, Reason.BAD_TIMESTAMP], [150_002, Reason.ENCODING], [199_992, Reason.FIELD_COUNT],
    ]
    assert result.events.num_rows == rows - 3
    assert result.rows_read == rows


def test_invalid_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of fail, quarantine"):
        read(write_events(tmp_path, GOOD_BEFORE), mode="lenient")


def test_event_span_is_first_day_to_the_day_after_the_last(tmp_path):
    path = write_events(tmp_path, b"1,10,2025-01-06T23:59:59Z\n1,10,bad\n2,20,1736467200\n")  # 2025-01-10 00:00
    assert event_span_csv(path, EventColumns()) == (date(2025, 1, 6), date(2025, 1, 11))


def test_event_span_of_a_file_without_events_is_an_error(tmp_path):
    with pytest.raises(IngestionError, match="no event has a timestamp"):
        event_span_csv(write_events(tmp_path, b""), EventColumns())


def test_rejected_frame_has_fixed_dtypes_even_when_empty():
    empty = rejected_frame()
    assert list(empty.columns) == list(REJECTED_COLUMNS)
    assert empty["line"].dtype == np.int64
    rows = rejected_frame([Rejected("b.csv", 3, "x", "raw"), Rejected("a.csv", 9, "y", "raw")])
    assert rows["file"].tolist() == ["a.csv", "b.csv"]
    assert pd.api.types.is_string_dtype(rows["reason"])
