"""The canonical raw layout: what every source yields and what ingestion validates.

A canonical directory holds ``titles.jsonl`` (one JSON object per title, keys ``TITLE_FIELDS``), ``users.csv``
(``user_id`` then categorical feature columns), ``events.csv`` (``EVENT_COLUMNS``; timestamps ISO-8601 in UTC or
integer Unix seconds), and optionally ``tags.csv`` (``TAG_COLUMNS``) and ``manifest.json``. The full specification
of each file is in docs/design.md ("The canonical layout").
"""

from __future__ import annotations

TITLES_FILE = "titles.jsonl"
USERS_FILE = "users.csv"
EVENTS_FILE = "events.csv"
TAGS_FILE = "tags.csv"
MANIFEST_FILE = "manifest.json"

TITLE_FIELDS: tuple[str, ...] = (
    "title_id",
    "title",
    "category",
    "genres",
    "subgenres",
    "actors",
    "directors",
    "maturity_rating",
    "country",
    "release_year",
    "acquisition_date",
    "synopsis",
    "image",
)
LIST_FIELDS: frozenset[str] = frozenset({"genres", "subgenres", "actors", "directors"})
CATEGORIES: tuple[str, ...] = ("movie", "tv")
EVENT_COLUMNS: tuple[str, ...] = ("user_id", "title_id", "timestamp")
TAG_COLUMNS: tuple[str, ...] = ("title_id", "tag", "timestamp")
