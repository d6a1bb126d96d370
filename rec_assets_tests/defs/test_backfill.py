"""Two backfills over overlapping scoring weeks, launched at once through the daemon, and a `make run` (the CLI's
``run``) while they run, share one warehouse: no run fails on a lock, and the tables equal a serial run.

`make ui` (``dg dev``: webserver, daemon, code server) runs on a fresh instance with the project's
dagster.yaml (run queue of 3, pool ``duckdb_writer`` of 1) and its own DuckDB file; the test launches the
backfill through the GraphQL API, as the UI's "Materialize" dialog does, and waits for it (bounded).

To keep `make test` short, each backfill selects the part of the graph that writes the warehouse and runs in
seconds per week: the catalogue snapshots, every event week up to its last scoring week (one run, the
asset's single-run backfill policy) and the split group (``split_windows``, ``cold_start_titles``,
``title_popularity``, ``week_titles``) of three scoring weeks, one run per week: the first backfill the
fourth- to second-last weeks, the second the third-last to the last, so two weeks are written by both. Their
runs are queued together and run up to three at a time, while the CLI's ``run`` of the last week (ingestion,
the whole graph of the week, the summaries; its own runs in the same instance) writes the same file, so DuckDB
writers of every kind contend for it. About 4 minutes on two cores.

Checked: every run of both backfills and the CLI's succeeded, at least two of them overlapped in time, no two DuckDB
connections held the warehouse file at once (read-only ones aside: they share it), as each step's log records
them, and every table equals (run ids aside) the one a serial materialisation of the same weeks, then the
CLI's run, wrote into another DuckDB file. Not checked: that the ``duckdb_writer`` pool never admits two steps at once. On the default
SQLite instance Dagster's slot claim is a read then an update (SQLite ignores SELECT ... FOR UPDATE), and CI
once saw two writer steps start 3 ms apart; the file lock, waited for by ``WarehouseResource.connect``, is
what keeps writers in turn.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ALL_WEEKS = SCORING_WEEKS.get_partition_keys()
WEEKS = ALL_WEEKS[-4:]
BACKFILL_RANGES = (WEEKS[:3], WEEKS[1:])  # two weeks in both
CLI_WEEK = WEEKS[-1]
PROJECT = Path(__file__).resolve().parents[2]
UNPARTITIONED = ["raw_titles", "raw_users"]
SPLIT_JOB = "split_weeks"
BACKFILL_TIMEOUT_S = 1200

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


def serial_materialisation(database: Path, serial_env: dict[str, str]) -> None:
    """The same selection, one run after the other: in this process the events, then each week's split; then the
    CLI's run of the last week."""
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
    cli = cli_run(serial_env)
    assert cli.wait(timeout=BACKFILL_TIMEOUT_S) == 0, cli_output(serial_env)


def cli_log(env: dict[str, str]) -> Path:
    return Path(env["REC_DUCKDB"]).with_suffix(".cli.log")


def cli_run(env: dict[str, str]) -> subprocess.Popen:
    """`make run`'s command for the last week, its output to a file beside its warehouse."""
    with cli_log(env).open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "rec_assets.cli", "run", "--week", CLI_WEEK], cwd=PROJECT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def cli_output(env: dict[str, str]) -> str:
    return cli_log(env).read_text()[-4000:]


def launch_backfill(client: Client, split_keys: list[AssetKey], weeks: list[str]) -> str:
    by_asset = [{"assetKey": {"path": [name]}, "partitions": None} for name in UNPARTITIONED]
    by_asset.append({"assetKey": {"path": ["raw_watch_events"]},
                     "partitions": {"range": {"start": ALL_WEEKS[0], "end": weeks[-1]}}})
    by_asset += [{"assetKey": {"path": key.path}, "partitions": {"range": {"start": weeks[0], "end": weeks[-1]}}}
                 for key in split_keys]
    params = {"partitionsByAssets": by_asset, "title": f"test: scoring weeks {weeks[0]} .. {weeks[-1]} at once",
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
    serial_env = {**os.environ, "DAGSTER_HOME": str(work / "serial_dagster_home"), "REC_HOME": str(rec_home),
                  "REC_DUCKDB": str(serial_db), "REC_ARTIFACTS": str(work / "serial_artifacts")}
    started = time.monotonic()
    serial_materialisation(serial_db, serial_env)
    serial_s = time.monotonic() - started

    dagster_home = prepare_dagster_home(work / "dagster_home")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "REC_HOME": str(rec_home),
           "REC_DUCKDB": str(concurrent_db), "REC_ARTIFACTS": str(work / "artifacts")}
    started = time.monotonic()
    with dagster_ui(env, ARTIFACTS / "backfill" / "dg_dev.log") as ui:
        client = Client(transport=RequestsHTTPTransport(url=ui.graphql_url, timeout=60))
        split_keys = _split_keys(build_definitions())
        backfill_ids = [launch_backfill(client, split_keys, weeks) for weeks in BACKFILL_RANGES]
        cli = cli_run(env)
        backfills = [wait_for_backfill(client, backfill_id, ui) for backfill_id in backfill_ids]
        cli_code = cli.wait(timeout=BACKFILL_TIMEOUT_S)
    backfill_s = time.monotonic() - started
    print(f"serial materialisation {serial_s:.1f} s; UI start, two backfills and a CLI run, stop {backfill_s:.1f} s")
    instance = DagsterInstance.from_config(str(dagster_home))
    backfill_runs = [run for backfill_id in backfill_ids
                     for run in instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))]
    return {"backfills": backfills, "ids": backfill_ids, "instance": instance, "backfill_runs": backfill_runs,
            "cli_code": cli_code, "cli_output": cli_output(env), "serial": serial_db, "concurrent": concurrent_db}


def test_every_run_of_both_backfills_and_of_the_cli_succeeds(backfilled):
    for backfill in backfilled["backfills"]:
        assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert backfilled["cli_code"] == 0, backfilled["cli_output"]
    runs = backfilled["backfill_runs"]
    # Per backfill: the catalogue, the events (one run for every week), and one run per scoring week of the split.
    assert len(runs) >= sum(2 + len(weeks) for weeks in BACKFILL_RANGES)
    failed = {run.run_id: run.status for run in backfilled["instance"].get_runs() if run.status != DagsterRunStatus.SUCCESS}
    assert failed == {}
    weeks = [run.tags.get("dagster/partition") for run in runs if run.tags.get("dagster/partition")]
    assert sorted(weeks) == sorted(w for weeks in BACKFILL_RANGES for w in weeks)


def test_runs_overlapped_and_warehouse_writers_took_turns(backfilled):
    instance = backfilled["instance"]
    runs = instance.get_runs()  # both backfills' and the CLI's
    backfill_ids = {run.run_id for run in backfilled["backfill_runs"]}
    window = {run.run_id: instance.get_run_stats(run.run_id) for run in runs}
    cli_windows = [(w.start_time, w.end_time) for r, w in window.items() if r not in backfill_ids and w.end_time]
    backfill_windows = [(w.start_time, w.end_time) for r, w in window.items() if r in backfill_ids and w.end_time]
    assert cli_windows, "the CLI's runs are in the instance"
    # The CLI ran while the backfills did, not after them.
    assert any(s < e2 and s2 < e for s, e in cli_windows for s2, e2 in backfill_windows)
    stats = [instance.get_run_stats(run.run_id) for run in runs]
    windows = sorted((s.start_time, s.end_time) for s in stats if s.start_time and s.end_time)
    most_at_once = max(sum(1 for s, e in windows if s <= t < e) for t, _ in windows)
    assert most_at_once >= 2, windows
    held = _connections(instance, [run.run_id for run in runs])
    assert sum(1 for *_, mode, _ in held if mode == "read-write") >= sum(len(weeks) for weeks in BACKFILL_RANGES) * 4
    # Read-only connections share the file; any other two must not have held it at the same time.
    clashes = [(a, b) for i, a in enumerate(held) for b in held[i + 1:]
               if b[0] < a[1] and "read-write" in (a[2], b[2])]
    assert clashes == []


def test_tables_equal_those_of_a_serial_run(backfilled):
    serial, concurrent = backfilled["serial"], backfilled["concurrent"]
    tables = _tables(serial)
    assert tables == _tables(concurrent)
    assert {"raw_watch_events", "split_windows", "cold_start_titles", "title_popularity", "week_titles",
            "weekly_recommendations"} <= set(tables)
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{serial}' AS serial (READ_ONLY)")
        conn.execute(f"ATTACH '{concurrent}' AS concurrent (READ_ONLY)")
        for table in tables:
            rows = conn.execute(f"SELECT count(*) FROM serial.{table}").fetchone()[0]
            assert rows == conn.execute(f"SELECT count(*) FROM concurrent.{table}").fetchone()[0], table
            columns = ", ".join(f'"{c}"' for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'serial' AND table_name = $t"
                " ORDER BY ordinal_position", {"t": table}).fetchall() if not c.endswith("run_id"))  # new per run
            differing = conn.execute(
                f"SELECT count(*) FROM ((SELECT {columns} FROM serial.{table} EXCEPT ALL "
                f"SELECT {columns} FROM concurrent.{table}) UNION ALL (SELECT {columns} FROM concurrent.{table} "
                f"EXCEPT ALL SELECT {columns} FROM serial.{table}))"
            ).fetchone()[0]
            assert differing == 0, f"{table}: {differing} rows differ"
        weeks = conn.execute("SELECT DISTINCT scoring_week::VARCHAR FROM concurrent.split_windows ORDER BY 1").fetchall()
        assert [w for (w,) in weeks] == WEEKS
