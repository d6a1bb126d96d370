"""Where the warehouse's data is stored (pure code: no dagster import). One module per store:

- ``tables``: the warehouse tables (their DDL) and the writes the assets call, for either store below.
- ``duckdb_file``: the writer of the one DuckDB file (``REC_TABLE_STORE=duckdb``, the default).
- ``parquet``: the Parquet table store (a shared path or ``s3://`` prefix) and its writer.
- ``artifacts``: artifact directories (arrays, frames, ``meta.json``) written atomically.
- ``hashing``: the sha256 of a file or a directory, the one content hash of stored files.

Design notes: docs/design.md, "Storage: where tables and artifacts live".
"""
