"""A backfill of four scoring weeks through the daemon, several runs at once, equals a serial materialisation.

`make ui` (``dg dev``: webserver, daemon, code server) runs on a fresh instance with the project's
dagster.yaml (run queue of 3, pool ``duckdb_writer`` of 1) and its own DuckDB file; the test launches the
backfill through the GraphQL API, as the UI's "Materialize" dialog does, and waits for it (bounded).

To keep `make test` short, the backfill selects the part of the graph that writes the warehouse and runs in
seconds per week: the catalogue snapshots, every event week up to the last scoring week (one run, the
asset's single-run backfill policy) and the split group (``split_windows``, ``cold_start_titles``,
``title_popularity``, ``week_titles``) of the last four scoring weeks, one run per week. Those four runs are
queued together and run up to three at a time, so their DuckDB writers contend for the file; the features,
towers and evaluation only add reading and training time, not writers of a different kind. About 2 minutes
on two cores.

Checked: every run of the backfill succeeded, at least two of them overlapped in time, no two DuckDB
connections held the warehouse file at once (read-only ones aside: they share it), as each step's log records
them, and every table equals the one a serial in-process materialisation of the same weeks wrote into another
DuckDB file. Not checked: that the ``duckdb_writer`` pool never admits two steps at once. On the default
SQLite instance Dagster's slot claim is a read then an update (SQLite ignores SELECT ... FOR UPDATE), and CI
once saw two writer steps start 3 ms apart; the file lock, waited for by ``WarehouseResource.connect``, is
what keeps writers in turn.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunsFilter,
    define_asset_job,
)
from gql import Client, GraphQLRequest
from gql.transport.requests import RequestsHTTPTransport

from rec_assets.cli.local_services import BACKFILL_STATUS
from rec_assets.cli.stages import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from rec_assets.definitions import build_definitions
from rec_assets.defs.jobs import INGEST_JOB, ingest_history_job
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import WarehouseResource
from rec_assets.defs.split import SPLIT_GROUP
from rec_assets_tests.ui.server import ARTIFACTS, dagster_ui, prepare_dagster_home

pytestmark = pytest.mark.timeout(900)

ALL_WEEKS = SCORING_WEEKS.get_partition_keys()
WEEKS = ALL_WEEKS[-4:]
UNPARTITIONED = ["raw_titles", "raw_users"]
SPLIT_JOB = "split_weeks"
BACKFILL_TIMEOUT_S = 600

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""

def _split_keys(defs: Definitions) -> list[AssetKey]:
    return sorted(AssetSelection.groups(SPLIT_GROUP).resolve(defs.resolve_asset_graph()))


def _tables(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return sorted(r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall())


def serial_materialisation(database: Path) -> None:
    """The same selection, one run after the other, in this process: the events, then each week's split."""
    base = build_definitions()
    resources = {**base.resources, "warehouse_db": WarehouseResource(database=str(database))}
    defs = Definitions(
        assets=list(base.assets), asset_checks=list(base.asset_checks), resources=resources,
        jobs=[ingest_history_job, define_asset_job(SPLIT_JOB, selection=AssetSelection.groups(SPLIT_GROUP))],
    )
    instance = DagsterInstance.ephemeral()
    ingest = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=instance,
        tags={PARTITION_RANGE_START_TAG: ALL_WEEKS[0], PARTITION_RANGE_END_TAG: WEEKS[-1]},
    )
    assert ingest.success
    split = defs.resolve_job_def(SPLIT_JOB)
    for week in WEEKS:
        assert split.execute_in_process(instance=instance, partition_key=week).success


def launch_backfill(client: Client, split_keys: list[AssetKey]) -> str:
    by_asset = [{"assetKey": {"path": [name]}, "partitions": None} for name in UNPARTITIONED]
    by_asset.append({"assetKey": {"path": ["raw_watch_events"]},
                     "partitions": {"range": {"start": ALL_WEEKS[0], "end": WEEKS[-1]}}})
    by_asset += [{"assetKey": {"path": key.path}, "partitions": {"range": {"start": WEEKS[0], "end": WEEKS[-1]}}}
                 for key in split_keys]
    params = {"partitionsByAssets": by_asset, "title": "test: four scoring weeks at once",
              # One process per run (not per step), to keep the test short; runs still run side by side.
              "runConfigData": {"execution": {"config": {"in_process": {}}}}}
    answer = client.execute(GraphQLRequest(LAUNCH, variable_values={"params": params}))["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def wait_for_backfill(client: Client, backfill_id: str, ui) -> dict:
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    while time.monotonic() < deadline:
        backfill = client.execute(GraphQLRequest(BACKFILL_STATUS, variable_values={"id": backfill_id}))["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        unfinished = [r for r in backfill["runs"] if r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") and not unfinished:
            return backfill
        time.sleep(2.0)
    raise TimeoutError(f"backfill {backfill_id} not done in {BACKFILL_TIMEOUT_S} s:\n{ui.log_tail()}")


CONNECTION_LINE = re.compile(r"DuckDB warehouse (?P<mode>read-only|read-write) connection: .*"
                             r"\(opened (?P<opened>[0-9.]+), closed (?P<closed>[0-9.]+), epoch seconds\)")


def _connections(instance: DagsterInstance, run_ids: list[str]) -> list[tuple[float, float, str, str]]:
    """(opened, closed, mode, run) of every DuckDB warehouse connection the runs' steps logged."""
    held = []
    for run_id in run_ids:
        for entry in instance.all_logs(run_id):
            match = CONNECTION_LINE.search(entry.user_message or "")
            if match:
                held.append((float(match["opened"]), float(match["closed"]), match["mode"], run_id))
    return sorted(held)


@pytest.fixture(scope="module")
def backfilled(rec_home: Path, tmp_path_factory):
    work = tmp_path_factory.mktemp("backfill")
    serial_db, concurrent_db = work / "serial.duckdb", work / "concurrent.duckdb"
    started = time.monotonic()
    serial_materialisation(serial_db)
    serial_s = time.monotonic() - started

    dagster_home = prepare_dagster_home(work / "dagster_home")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "REC_HOME": str(rec_home),
           "REC_DUCKDB": str(concurrent_db), "REC_ARTIFACTS": str(work / "artifacts")}
    started = time.monotonic()
    with dagster_ui(env, ARTIFACTS / "backfill" / "dg_dev.log") as ui:
        client = Client(transport=RequestsHTTPTransport(url=ui.graphql_url, timeout=60))
        backfill_id = launch_backfill(client, _split_keys(build_definitions()))
        backfill = wait_for_backfill(client, backfill_id, ui)
    backfill_s = time.monotonic() - started
    print(f"serial materialisation {serial_s:.1f} s; UI start, backfill and stop {backfill_s:.1f} s")
    instance = DagsterInstance.from_config(str(dagster_home))
    return {"backfill": backfill, "id": backfill_id, "instance": instance,
            "serial": serial_db, "concurrent": concurrent_db}


def test_every_run_of_the_backfill_succeeds(backfilled):
    backfill = backfilled["backfill"]
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    runs = backfilled["instance"].get_runs(filters=RunsFilter(tags={"dagster/backfill": backfilled["id"]}))
    # The catalogue, the events (one run for every week), and one run per scoring week of the split.
    assert len(runs) >= 2 + len(WEEKS)
    failed = {run.run_id: run.status for run in runs if run.status != DagsterRunStatus.SUCCESS}
    assert failed == {}
    weeks = sorted(run.tags.get("dagster/partition") for run in runs if run.tags.get("dagster/partition"))
    assert set(WEEKS) <= set(weeks)


def test_runs_overlapped_and_warehouse_writers_took_turns(backfilled):
    instance = backfilled["instance"]
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfilled["id"]}))
    stats = [instance.get_run_stats(run.run_id) for run in runs]
    windows = sorted((s.start_time, s.end_time) for s in stats if s.start_time and s.end_time)
    most_at_once = max(sum(1 for s, e in windows if s <= t < e) for t, _ in windows)
    assert most_at_once >= 2, windows
    held = _connections(instance, [run.run_id for run in runs])
    assert sum(1 for *_, mode, _ in held if mode == "read-write") >= len(WEEKS) * 4
    # Read-only connections share the file; any other two must not have held it at the same time.
    clashes = [(a, b) for i, a in enumerate(held) for b in held[i + 1:]
               if b[0] < a[1] and "read-write" in (a[2], b[2])]
    assert clashes == []


def test_tables_equal_those_of_a_serial_materialisation(backfilled):
    serial, concurrent = backfilled["serial"], backfilled["concurrent"]
    tables = _tables(serial)
    assert tables == _tables(concurrent)
    assert {"raw_watch_events", "split_windows", "cold_start_titles", "title_popularity", "week_titles"} <= set(tables)
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{serial}' AS serial (READ_ONLY)")
        conn.execute(f"ATTACH '{concurrent}' AS concurrent (READ_ONLY)")
        for table in tables:
            rows = conn.execute(f"SELECT count(*) FROM serial.{table}").fetchone()[0]
            assert rows == conn.execute(f"SELECT count(*) FROM concurrent.{table}").fetchone()[0], table
            differing = conn.execute(
                f"SELECT count(*) FROM ((FROM serial.{table} EXCEPT ALL FROM concurrent.{table})"
                f" UNION ALL (FROM concurrent.{table} EXCEPT ALL FROM serial.{table}))"
            ).fetchone()[0]
            assert differing == 0, f"{table}: {differing} rows differ"
        weeks = conn.execute("SELECT DISTINCT scoring_week::VARCHAR FROM concurrent.split_windows ORDER BY 1").fetchall()
        assert [w for (w,) in weeks] == WEEKS
