"""The dbt-like runner: dependencies come from the SQL, values are bound, re-runs replace a partition."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from rec_assets.sqlmodels.runner import (
    SqlModelError,
    discover_models,
    materialize_partition,
    topological_order,
    upstream_models,
)


def write(directory: Path, name: str, sql: str) -> None:
    (directory / f"{name}.sql").write_text(sql)


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    write(tmp_path, "daily", "-- Events per day.\nSELECT $scoring_week::DATE AS scoring_week, day, count(*) AS n "
          "FROM {{ ref('events') }} WHERE day >= $start GROUP BY ALL")
    write(tmp_path, "busiest", "WITH d AS (SELECT * FROM {{ ref('daily') }} WHERE scoring_week = $scoring_week) "
          "SELECT scoring_week, max(n) AS n FROM d GROUP BY ALL")
    return tmp_path


@pytest.fixture()
def conn():
    connection = duckdb.connect()
    connection.execute("CREATE TABLE events AS SELECT * FROM (VALUES (DATE '2025-01-01'), (DATE '2025-01-01'),"
                       " (DATE '2025-01-02')) AS t(day)")
    yield connection
    connection.close()


def test_dependencies_are_inferred_from_the_sql(models_dir):
    models = discover_models(models_dir, sources=["events"])
    assert upstream_models(models["busiest"], models) == ["daily"]
    assert upstream_models(models["daily"], models) == []
    assert models["daily"].tables_read == ("events",)
    assert topological_order(models) == ["daily", "busiest"]
    assert models["daily"].parameters == ("scoring_week", "start")
    assert models["daily"].description == "Events per day."


def test_reading_a_model_without_ref_is_rejected(models_dir):
    write(models_dir, "sneaky", "SELECT $scoring_week AS scoring_week, n FROM daily")
    with pytest.raises(SqlModelError, match=r"sneaky.sql: reads \['daily'\] without ref"):
        discover_models(models_dir, sources=["events"])


def test_ref_to_an_unknown_model_is_rejected(models_dir):
    write(models_dir, "broken", "SELECT * FROM {{ ref('nowhere') }}")
    with pytest.raises(SqlModelError, match="broken.sql: ref\\(\\) to unknown model"):
        discover_models(models_dir, sources=["events"])


def test_a_model_is_exactly_one_select(models_dir):
    write(models_dir, "two", "SELECT 1; SELECT 2")
    with pytest.raises(SqlModelError, match="two.sql: a model is exactly one SELECT"):
        discover_models(models_dir)


def test_cycles_are_named(tmp_path):
    write(tmp_path, "a", "SELECT * FROM {{ ref('b') }}")
    write(tmp_path, "b", "SELECT * FROM {{ ref('a') }}")
    with pytest.raises(SqlModelError, match="cycle"):
        discover_models(tmp_path)


def test_rerunning_a_partition_replaces_its_rows_and_keeps_other_partitions(models_dir, conn):
    daily = discover_models(models_dir, sources=["events"])["daily"]
    first = materialize_partition(conn, daily, {"scoring_week": date(2025, 1, 6), "start": date(2025, 1, 1)})
    other = materialize_partition(conn, daily, {"scoring_week": date(2025, 1, 13), "start": date(2025, 1, 2)})
    again = materialize_partition(conn, daily, {"scoring_week": date(2025, 1, 6), "start": date(2025, 1, 1)})
    assert (first.rows_inserted, first.rows_replaced) == (2, 0)
    assert (other.rows_inserted, again.rows_replaced, again.rows_inserted) == (1, 2, 2)
    assert again.content_hash == first.content_hash
    rows = conn.execute("SELECT scoring_week, day, n FROM daily ORDER BY ALL").fetchall()
    assert rows == [
        (date(2025, 1, 6), date(2025, 1, 1), 2),
        (date(2025, 1, 6), date(2025, 1, 2), 1),
        (date(2025, 1, 13), date(2025, 1, 2), 1),
    ]


def test_values_are_bound_not_formatted(models_dir, conn):
    daily = discover_models(models_dir, sources=["events"])["daily"]
    injection = "2025-01-02'; DROP TABLE events; --"
    # A bound value is a value: DuckDB tries to read it as a date instead of running it.
    with pytest.raises(duckdb.ConversionException, match="invalid date"):
        materialize_partition(conn, daily, {"scoring_week": date(2025, 1, 6), "start": injection})
    assert "DROP" not in daily.render()
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3


def test_a_missing_parameter_is_named(models_dir, conn):
    daily = discover_models(models_dir, sources=["events"])["daily"]
    with pytest.raises(SqlModelError, match=r"no value for parameter\(s\) \['start'\]"):
        materialize_partition(conn, daily, {"scoring_week": date(2025, 1, 6)})


def test_a_failed_run_leaves_the_stored_partition_untouched(models_dir, conn, tmp_path):
    models = discover_models(models_dir, sources=["events"])
    materialize_partition(conn, models["daily"], {"scoring_week": date(2025, 1, 6), "start": date(2025, 1, 1)})
    write(tmp_path, "daily", "SELECT $scoring_week::DATE AS scoring_week, day, 1 / 0 AS n, error('boom') AS e "
          "FROM {{ ref('events') }} WHERE day >= $start")
    broken = discover_models(tmp_path, sources=["events"])["daily"]
    with pytest.raises(duckdb.Error):
        materialize_partition(conn, broken, {"scoring_week": date(2025, 1, 6), "start": date(2025, 1, 1)})
    assert conn.execute("SELECT count(*), sum(n) FROM daily").fetchone() == (2, 3)


def test_rows_outside_the_partition_are_refused(tmp_path, conn):
    write(tmp_path, "leaky", "SELECT day AS scoring_week FROM {{ ref('events') }} WHERE $scoring_week IS NOT NULL")
    leaky = discover_models(tmp_path, sources=["events"])["leaky"]
    with pytest.raises(SqlModelError, match="3 row\\(s\\) fall outside partition"):
        materialize_partition(conn, leaky, {"scoring_week": date(2025, 1, 6)})
