"""What the file-backed sources share: their data directory, its version, and events read from one file."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rec_assets.sources.column_parsing import int64_ids
from rec_assets.sources.event_csv import EventColumns, event_span_csv, read_events_csv
from rec_assets.sources.protocol import EventsRead, TimestampBounds
from rec_assets.sources.rejects import IngestionError


class FileSource(ABC):
    """A source whose events are one file of its data directory (CSV, or ``::``-separated ``.dat``); subclasses
    say which file (``events_file``) and which title ids the titles file lists (``listed_title_ids``)."""

    name: str
    data_dir: Path

    @abstractmethod
    def events_file(self) -> tuple[Path, EventColumns, str]:
        """The event file, its columns, and the name of the users file its user ids are checked against."""

    @abstractmethod
    def listed_title_ids(self) -> set[int]:
        """Every title id the titles file lists, good or rejected (to tell a cascade from an unknown title)."""

    def read_events(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        known_title_ids: Any,
        known_user_ids: Any = None,
        now: datetime,
        mode: str = "quarantine",
        earliest: datetime | None = None,
    ) -> EventsRead:
        path, columns, users_file = self.events_file()
        known = int64_ids(known_title_ids)
        rejected_titles = sorted(self.listed_title_ids() - set(known.to_pylist())) if known is not None else None
        return read_events_csv(
            path, columns,
            start=start, end=end, known_title_ids=known_title_ids, known_user_ids=known_user_ids, now=now,
            mode=mode, users_file=users_file, earliest=earliest, rejected_title_ids=rejected_titles,
        )

    def event_span(self, bounds: TimestampBounds | None = None) -> tuple[date, date]:
        path, columns, _ = self.events_file()
        return event_span_csv(path, columns, bounds)

    def fingerprint(self) -> str:
        return directory_fingerprint(self.data_dir)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise IngestionError(f"{what}: required file {path.name} is missing from {path.parent}", file=path.name)
    return path


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
