"""Rejected rows: the reason codes, the rejected-rows table, and the log that holds them or raises the first.

Two modes, chosen by the caller: ``"fail"`` raises :class:`IngestionError` at the first bad row in file order, naming
the file, the 1-based line (the header is line 1) and the reason; ``"quarantine"`` drops bad rows into a rejected
table (``REJECTED_COLUMNS``). Problems with a file as a whole are fatal in both modes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

MODES: tuple[str, ...] = ("fail", "quarantine")
REJECTED_COLUMNS: tuple[str, ...] = ("file", "line", "reason", "raw", "detail")
FALLBACK_COUNT_PREFIX = "fallback_decoded_lines:"


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
