"""The canonical layout (``layout.py``) as a source, and ``open_source``, which picks a source by kind.

The simulator and users write this layout; ``CanonicalSource`` reads it through the same validation path as every
other source, so a canonical directory gets the same typed tables, rejected rows and counts.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rec_assets.sources import layout
from rec_assets.sources.event_csv import EventColumns
from rec_assets.sources.file_source import FileSource, require_directory, require_file
from rec_assets.sources.frames import no_tags, title_counts, title_problem, titles_frame, users_read
from rec_assets.sources.line_readers import parse_int, read_jsonl, read_small_csv, read_tags_rows, unique_id_rows
from rec_assets.sources.movielens import MovieLensSource
from rec_assets.sources.protocol import Source, TagsRead, TimestampBounds, TitlesRead, UsersRead
from rec_assets.sources.rejects import IngestionError, Reason, RejectLog

SOURCE_KINDS: tuple[str, ...] = ("canonical", "movielens")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TEXT_FIELDS = ("title", "maturity_rating", "country", "synopsis")


def open_source(kind: str, data_dir: Path | str | None) -> Source:
    """The source of ``kind`` ("canonical" or "movielens") reading ``data_dir``.

    Raises ``ValueError`` for an unknown kind and ``IngestionError`` for a missing directory or required file.
    """
    if kind == "canonical":
        return CanonicalSource(data_dir)
    if kind == "movielens":
        return MovieLensSource(data_dir)
    raise ValueError(f"unknown source kind {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")


class CanonicalSource(FileSource):
    """A directory in the canonical layout: titles.jsonl and events.csv required, users.csv optional."""

    name = "canonical"

    def __init__(self, data_dir: Path | str | None):
        self.data_dir = require_directory(data_dir, self.name)
        self.titles_path = require_file(self.data_dir / layout.TITLES_FILE, self.name)
        self.events_path = require_file(self.data_dir / layout.EVENTS_FILE, self.name)
        self.users_path = self.data_dir / layout.USERS_FILE
        self.tags_path = self.data_dir / layout.TAGS_FILE

    def __repr__(self) -> str:
        return f"CanonicalSource({str(self.data_dir)!r})"

    def read_titles(self, mode: str = "quarantine", *, now: datetime | None = None) -> TitlesRead:
        log = RejectLog(mode)
        file = self.titles_path.name
        records: list[dict[str, Any]] = []
        line_of_id: dict[int, int] = {}
        images_not_found = 0
        for item in read_jsonl(self.titles_path, log):
            record, problem, image_not_found = self._title_record(item.value)
            if problem is None:
                problem = title_problem(record, now)
            if problem is None and record["title_id"] in line_of_id:
                problem = (Reason.DUPLICATE_TITLE_ID,
                           f"title_id {record['title_id']} repeats line {line_of_id[record['title_id']]}")
            if problem is not None:
                log.reject(file, item.line, problem[0], problem[1], item.raw)
                continue
            line_of_id[record["title_id"]] = item.line
            images_not_found += image_not_found
            records.append(record)
        titles = titles_frame(records)
        rejected = log.finish()
        counts = title_counts(titles, rejected)
        counts.update(image_file_not_found=images_not_found, **log.encoding_counts())
        return TitlesRead(titles=titles, rejected=rejected, counts=counts)

    def _title_record(self, value: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, str] | None, int]:
        """The title as typed values, the first problem with it (or None), and 1 if its image file is missing."""
        record: dict[str, Any] = {}
        if value.get("title_id") is None:
            return record, (Reason.MISSING_TITLE_ID, "title_id is missing"), 0
        title_id = parse_int(value["title_id"])
        if title_id is None or title_id < 0:
            return record, (Reason.BAD_TITLE_ID, f"title_id {value['title_id']!r} is not an integer id"), 0
        record["title_id"] = title_id
        record["category"] = value.get("category")
        for name in _TEXT_FIELDS:
            text = value.get(name)
            if text is not None and not isinstance(text, str):
                return record, (Reason.BAD_FIELD, f"{name} {text!r} is not a string"), 0
            record[name] = (text.strip() or None) if isinstance(text, str) else None
        for name in layout.LIST_FIELDS:
            items = value.get(name)
            if items is None:
                items = []
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                return record, (Reason.BAD_FIELD, f"{name} {items!r} is not a list of strings"), 0
            record[name] = [item.strip() for item in items if item.strip()]
        year = value.get("release_year")
        if year is not None and parse_int(year) is None:
            return record, (Reason.BAD_FIELD, f"release_year {year!r} is not an integer"), 0
        record["release_year"] = parse_int(year) if year is not None else None
        day = value.get("acquisition_date")
        record["acquisition_date"] = None
        if day is not None:
            try:
                if not isinstance(day, str) or not _DAY.fullmatch(day):
                    raise ValueError(day)
                record["acquisition_date"] = date.fromisoformat(day)
            except ValueError:
                return record, (Reason.BAD_FIELD, f"acquisition_date {day!r} is not a YYYY-MM-DD day"), 0
        image = value.get("image")
        if image is not None and not isinstance(image, str):
            return record, (Reason.BAD_FIELD, f"image {image!r} is not a path"), 0
        record["image"], image_not_found = None, 0
        if image and image.strip():
            path = Path(image.strip())
            path = path if path.is_absolute() else self.data_dir / path
            # A cover that is named but absent is a missing image (a handled case downstream), not a bad title.
            if path.is_file():
                record["image"] = str(path.resolve())
            else:
                image_not_found = 1
        return record, None, image_not_found

    def read_users(self, mode: str = "quarantine") -> UsersRead:
        log = RejectLog(mode)
        if not self.users_path.is_file():
            return users_read([], {}, log, missing_file=True)
        header, rows = read_small_csv(self.users_path, ["user_id"], log)
        feature_columns = {name: index for index, name in enumerate(header) if name != "user_id"}
        ids: list[int] = []
        features: dict[str, list[str | None]] = {name: [] for name in feature_columns}
        id_column = header.index("user_id")
        for user_id, row in unique_id_rows(self.users_path.name, rows, id_column, "user_id", "user", log):
            ids.append(user_id)
            for name, index in feature_columns.items():
                features[name].append(row.fields[index] or None)
        return users_read(ids, features, log)

    def events_file(self) -> tuple[Path, EventColumns, str]:
        return self.events_path, EventColumns(*layout.EVENT_COLUMNS), layout.USERS_FILE

    def listed_title_ids(self) -> set[int]:
        items = read_jsonl(self.titles_path, RejectLog("quarantine"))
        return {title_id for item in items if (title_id := parse_int(item.value.get("title_id"))) is not None}

    def read_tags(self, mode: str = "quarantine", *, known_title_ids: Any, bounds: TimestampBounds) -> TagsRead:
        """The optional ``tags.csv`` (``title_id,tag,timestamp``): one row per application of a tag."""
        if not self.tags_path.is_file():
            return no_tags()
        log = RejectLog(mode)
        header, rows = read_small_csv(self.tags_path, list(layout.TAG_COLUMNS), log)
        read = read_tags_rows(self.tags_path, rows, tuple(header.index(name) for name in layout.TAG_COLUMNS), log,
                              known_title_ids=known_title_ids, bounds=bounds)
        read.counts.update(missing_tags_file=0, **log.encoding_counts())
        return read


__all__ = ["SOURCE_KINDS", "CanonicalSource", "IngestionError", "open_source"]
