"""The canonical raw layout: what every source yields and what ingestion validates.

A source directory in the canonical layout holds:

``titles.jsonl``
    One JSON object per line, one line per title, with the keys of ``TITLE_FIELDS``:

    - ``title_id`` (int, unique), ``title`` (str)
    - ``category``: ``"movie"`` or ``"tv"``
    - ``genres`` (list of str, top-level genres), ``subgenres`` (list of str)
    - ``actors`` (list of str), ``directors`` (list of str)
    - ``maturity_rating`` (str or null), ``country`` (str or null; country of origin)
    - ``release_year`` (int or null)
    - ``acquisition_date`` (``"YYYY-MM-DD"`` or null): when the title became available on the service
    - ``synopsis`` (str or null)
    - ``image`` (str or null): cover-art path, relative to the source directory (or absolute)

``users.csv``
    Header ``user_id`` first, then any number of categorical user-feature columns (strings, empty = unknown),
    e.g. ``user_id,country``.

``events.csv``
    Header ``user_id,title_id,timestamp``; one watch event per line. ``timestamp`` is ISO-8601 in UTC
    (``2025-01-06T13:45:00Z``) or integer Unix seconds.

``tags.csv`` (optional)
    Header ``title_id,tag,timestamp``; one line per time a tag was applied to a title. Features use only the tags
    applied before the end of the history window they serve.

``manifest.json`` (optional)
    What produced the directory (generator, preset, seed, first and last event day, row counts).
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
