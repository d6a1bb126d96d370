"""The writer of the DuckDB file (``REC_TABLE_STORE=duckdb``, the default), one transaction per write (pure code).

A failed write rolls back, so nothing already stored is lost or half-written. A partition is replaced by
delete-then-insert, which makes re-running it idempotent and never touches another partition. One process
writes the file at a time (the ``duckdb_writer`` pool).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import duckdb

from rec_assets.faults import crash_point


def require_warehouse(conn: duckdb.DuckDBPyConnection, path: object, known: frozenset[str]) -> None:
    """Refuse a DuckDB file that holds tables but none of ``known``: another project's database."""
    tables = sorted(name for (name,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall())
    if tables and not known.intersection(tables):
        listed = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise ValueError(f"{path} is not a rec-assets warehouse: it holds only other tables ({listed}); set REC_DUCKDB "
                         f"to a new file or move this one away")


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class DuckDBFileWriter:
    """Writes staged or selected rows into the tables of the connection's DuckDB database."""

    whole_partitions = False  # a partition is the rows of a column value, whatever else the write holds

    @contextmanager
    def transaction(self, conn: duckdb.DuckDBPyConnection, *temporary: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; ``temporary`` tables are dropped before it commits (a rollback drops them too)."""
        with transaction(conn):
            yield conn
            for name in temporary:
                conn.execute(f'DROP TABLE IF EXISTS "{name}"')

    def create_tables(self, conn: duckdb.DuckDBPyConnection, ddls: Iterable[str]) -> None:
        for ddl in ddls:
            conn.execute(ddl)

    def replace_snapshot(self, conn: duckdb.DuckDBPyConnection, table: str, select: str, ddl: str | None) -> None:
        """Replace the table whole: into its DDL's table (already created), or as ``select``'s columns if None."""
        if ddl is None:
            conn.execute(f'CREATE OR REPLACE TABLE "{table}" AS {select}')
            return
        conn.execute(f'DELETE FROM "{table}"')
        conn.execute(f'INSERT INTO "{table}" BY NAME {select}')

    def replace_events(self, conn: duckdb.DuckDBPyConnection, select: str, bounds: dict,
                       ddl: str) -> tuple[int, int]:
        """Replace the events with ``start <= ts < end``. Returns (deleted, inserted)."""
        deleted = conn.execute(
            "DELETE FROM raw_watch_events WHERE ts >= $start AND ts < $end", bounds
        ).fetchone()[0]
        crash_point("table:raw_watch_events")
        inserted = conn.execute(f"INSERT INTO raw_watch_events BY NAME {select}", bounds).fetchone()[0]
        return int(deleted), int(inserted)

    def add_rows(self, conn: duckdb.DuckDBPyConnection, table: str, select: str, ddl: str, column: str,
                 value: object) -> None:
        """Add rows to a set table: a row already stored (by its primary key) is kept once."""
        conn.execute(f'INSERT OR IGNORE INTO "{table}" BY NAME {select}')

    def replace_partition(self, conn: duckdb.DuckDBPyConnection, table: str, stage: str, column: str,
                          value: object, recreate: bool) -> None:
        """Replace the rows of ``column = value`` by those of ``stage``; ``recreate`` (a new table, or changed
        columns) first rebuilds the table empty with ``stage``'s columns."""
        if recreate:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            conn.execute(f'CREATE TABLE "{table}" AS SELECT * FROM "{stage}" WHERE false')
        else:
            conn.execute(f'DELETE FROM "{table}" WHERE "{column}" = $value', {"value": value})
        crash_point(f"table:{table}")
        conn.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM "{stage}"')


DUCKDB_FILE = DuckDBFileWriter()
