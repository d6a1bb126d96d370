"""A real distributed executor on this machine: a backfill of three scoring weeks on two Celery workers.

``deploy/celery/backfill.py`` starts Debian's ``redis-server`` (broker and result backend) on 127.0.0.1 and a
free port, two ``dagster-celery worker start`` processes (one pool process each) and ``dagster dev`` on the
Celery code location (``deploy/celery/definitions.py``: the project's definitions with
``celery_executor``), all sharing one ``REC_HOME`` and the Parquet table store (``REC_TABLE_STORE``, no
DuckDB file lock). Through GraphQL it launches one ``ingest_history`` run over every event week, then a
partition backfill over three tiny weeks of ``scoring_week_core`` (split, features and the attention_id tower
of a week; ``materialize_scoring_week`` is the whole week, 8 towers and the evaluation) that the daemon runs (up to three
runs at once, the project's ``dagster.yaml``); every step of every run is a Celery task. Everything it
started is stopped on the way out (SIGTERM, or SIGINT for ``dagster dev``, then SIGKILL).

Checked: every run succeeded; every step of every run was executed by a Celery worker (the engine event each
worker writes names it), and both workers executed steps; against an in-process run of the same ingestion and
weeks (``execute_in_process``) into another REC_HOME and Parquet store: every table (rows sorted, run ids left
out, REC_HOME in the image paths written as ``$REC_HOME``), every file of every feature artifact (sha256;
meta.json without its wall-clock fields), and every checkpoint's weights and training record (sha256). The
test does not require the checkpoint files themselves to be byte-identical (they record their features'
directory hashes); it checks that each recorded hash is that of its own run's directory. Since the feature
timings left the hashed content the files have matched too (``checkpoint_files_byte_identical`` in the report). Both wall times are printed, and
written as JSON to ``$REC_CELERY_REPORT`` when it is set. Weeks: 2026-10-12, 2026-10-19 and 2026-11-02 of the tiny preset
(2026-10-26 fails the loss check of a tower on tiny, which skips that week's evaluation).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from rec_assets.cli.stages import QUIET, ingest_stage
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import WarehouseResource
from rec_assets.storage.hashing import directory_sha256, file_sha256

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CELERY = PROJECT_ROOT / "deploy" / "celery"
WEEKS = ["2026-10-12", "2026-10-19", "2026-11-02"]
WORKERS = 2
# The split and features groups and one tower per week (deploy/celery/definitions.py): the whole week's eight
# towers and evaluation would triple the test's time for no other kind of step.
JOB = "scoring_week_core"


@functools.cache
def load(name: str):
    """A module of deploy/celery (not a package), registered so that its dataclasses resolve their module."""
    spec = importlib.util.spec_from_file_location(f"rec_assets_celery_{name}", CELERY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _portable(value, home: str):
    """A value with its run's REC_HOME replaced (raw_titles holds the simulator's image paths, under REC_HOME)."""
    if isinstance(value, str):
        return value.replace(home, "$REC_HOME")
    if isinstance(value, (list, tuple)):
        return type(value)(_portable(v, home) for v in value)
    return value


def table_rows(work: Path) -> dict[str, list[tuple]]:
    """Every table of work/tables: its rows, sorted, without run-id columns (each run has its own by design) and
    with work/rec_home written as $REC_HOME."""
    found = {}
    home = str(work / "rec_home")
    with WarehouseResource(table_store=str(work / "tables")).connect(read_only=True) as conn:
        tables = [t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        for table in tables:
            columns = [c for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $t ORDER BY ordinal_position",
                {"t": table}).fetchall() if not c.endswith("run_id")]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(f'SELECT {select} FROM "{table}" ORDER BY ALL').fetchall()
            found[table] = [tuple(_portable(v, home) for v in row) for row in rows]
    return found


# Wall-clock fields of a feature artifact's meta.json: the only bytes two runs of a week do not share.
TIMING_FIELDS = ("seconds", "items_per_second", "images_per_second")


def _json_sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def feature_files(rec_home: Path) -> dict[str, str]:
    """Every file of every feature artifact under REC_HOME/artifacts/features: its sha256 (meta.json's without
    its timing fields)."""
    features = rec_home / "artifacts" / "features"
    hashes = {}
    for path in sorted(features.glob("*/*/**/*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(features).parts):
            continue
        if path.name == "meta.json":
            meta = {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING_FIELDS}
            hashes[str(path.relative_to(features))] = _json_sha256(meta)
        else:
            hashes[str(path.relative_to(features))] = file_sha256(path)
    return hashes


def _content(value):
    """A checkpoint's value with every tensor replaced by its dtype, shape and the sha256 of its bytes."""
    import torch

    if torch.is_tensor(value):
        tensor = value.detach().cpu().contiguous()
        return [str(tensor.dtype), list(tensor.shape), hashlib.sha256(tensor.numpy().tobytes()).hexdigest()]
    if isinstance(value, dict):
        return {str(k): _content(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_content(v) for v in value]
    return value


def checkpoints(rec_home: Path) -> dict[str, dict]:
    """Every checkpoint file: its sha256, the sha256 of its weights and of everything else it holds except the
    feature hashes it records, and those hashes (the feature directories' at training time)."""
    import torch

    artifacts = rec_home / "artifacts"
    found = {}
    for path in sorted((artifacts / "checkpoints").rglob("*.pt")):
        saved = torch.load(path, map_location="cpu", weights_only=False)
        rest = {k: v for k, v in saved.items() if k != "state_dict"}
        extra = dict(rest.get("extra") or {})
        feature_hashes = extra.pop("feature_hashes", None)
        rest["extra"] = extra
        found[str(path.relative_to(artifacts))] = {
            "file_sha256": file_sha256(path), "weights_sha256": _json_sha256(_content(saved["state_dict"])),
            "rest_sha256": _json_sha256(_content(rest)), "feature_hashes": feature_hashes,
        }
    return found


def local_run(work: Path, monkeypatch) -> float:
    """The same ingestion and weeks in this process (execute_in_process, the CLI's stages) into work/rec_home and
    the Parquet store work/tables; its wall time."""
    monkeypatch.setenv("REC_HOME", str(work / "rec_home"))
    monkeypatch.setenv("REC_TABLE_STORE", str(work / "tables"))
    from dagster import DagsterInstance

    defs = load("definitions").defs()  # execute_in_process runs every step in this process, whatever the executor
    weekly = defs.resolve_job_def(JOB)
    started = time.monotonic()
    with DagsterInstance.ephemeral() as instance:
        assert ingest_stage(defs).execute(instance).success, "local run: ingestion failed"
        for week in WEEKS:
            result = weekly.execute_in_process(run_config=QUIET, instance=instance, partition_key=week,
                                               raise_on_error=False)
            assert result.success, f"local run: week {week} failed"
    return time.monotonic() - started


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if shutil.which("redis-server") is None or importlib.util.find_spec("dagster_celery") is None:
        pytest.fail("the Celery backfill needs redis-server and dagster-celery: make celery-deps")
    assert set(WEEKS) <= set(SCORING_WEEKS.get_partition_keys())
    driver = load("backfill")
    keys = SCORING_WEEKS.get_partition_keys()
    distributed_work = tmp_path_factory.mktemp("celery")
    base_env = {k: v for k, v in os.environ.items() if k not in ("REC_DUCKDB", "REC_ARTIFACTS")}
    base_env["REC_SIM_PRESET"] = "tiny"
    summary = driver.run_celery_backfill(distributed_work, WEEKS, (keys[0], keys[-1]), workers=WORKERS,
                                         job=JOB, base_env=base_env)
    local_work = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as monkeypatch:
        local_s = local_run(local_work, monkeypatch)
    distributed_s = summary["wall_s"]["ingest"] + summary["wall_s"]["backfill"]
    local_checkpoints = checkpoints(local_work / "rec_home")
    distributed_checkpoints = checkpoints(distributed_work / "rec_home")
    report = {"weeks": WEEKS, "job": JOB, "workers": WORKERS, "distributed_s": round(distributed_s, 1),
              "distributed_wall_s": summary["wall_s"], "local_s": round(local_s, 1),
              "checkpoint_files_byte_identical": {
                  name: local_checkpoints[name]["file_sha256"] == distributed_checkpoints.get(name, {}).get("file_sha256")
                  for name in local_checkpoints},
              "summary": summary}
    print(f"celery (ingest + backfill) {distributed_s:.1f} s, startup {summary['wall_s']['startup']} s; "
          f"local in-process {local_s:.1f} s")
    if os.environ.get("REC_CELERY_REPORT"):
        Path(os.environ["REC_CELERY_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    return {"summary": summary, "distributed": distributed_work, "local": local_work}


def test_every_run_of_the_celery_backfill_succeeds(runs):
    summary = runs["summary"]
    assert summary["ingest_run"]["status"] == "SUCCESS"
    assert summary["backfill"]["status"] == "COMPLETED_SUCCESS", summary["backfill"]
    backfill_runs = summary["backfill"]["runs"]
    assert sorted(run["week"] for run in backfill_runs.values()) == WEEKS
    assert {run["status"] for run in backfill_runs.values()} == {"SUCCESS"}


def test_every_step_ran_on_a_celery_worker_and_both_workers_took_steps(runs):
    step_workers = runs["summary"]["step_workers"]
    assert set(step_workers) == {runs["summary"]["ingest_run"]["id"], *runs["summary"]["backfill"]["runs"]}
    for run_id, steps in step_workers.items():
        assert steps, f"run {run_id} started no step"
        local = sorted(step for step, worker in steps.items() if worker is None)
        assert local == [], f"run {run_id}: steps not executed by a Celery worker: {local}"
    # Every asset of the job is a step of each week's run, executed on a worker.
    job_assets = {key.to_user_string() for key in load("definitions").defs().resolve_job_def(JOB).asset_layer.selected_asset_keys}
    assert "tower_checkpoint_attention_id" in job_assets and "split_windows" in job_assets
    for run_id in runs["summary"]["backfill"]["runs"]:
        assert job_assets <= set(step_workers[run_id]), job_assets - set(step_workers[run_id])
    workers = {worker for steps in step_workers.values() for worker in steps.values()}
    assert {worker.split("@")[0] for worker in workers} == {f"rec{i}" for i in range(1, WORKERS + 1)}, workers


def test_tables_equal_the_local_run(runs):
    local, distributed = table_rows(runs["local"]), table_rows(runs["distributed"])
    assert {"raw_watch_events", "split_windows", "cold_start_titles", "title_popularity", "week_titles"} <= set(local)
    assert sorted(distributed) == sorted(local)
    for table, rows in local.items():
        assert len(distributed[table]) == len(rows), table
        assert distributed[table] == rows, f"{table}: rows differ"


def test_feature_artifacts_equal_the_local_run(runs):
    local = feature_files(runs["local"] / "rec_home")
    assert {name.split("/")[0] for name in local} == {"categorical", "synopsis", "cover_art"}
    assert {name.split("/")[1] for name in local} == set(WEEKS)
    assert feature_files(runs["distributed"] / "rec_home") == local


def test_checkpoints_equal_the_local_run(runs):
    """The same weights and training record; the feature hashes a checkpoint records are its own run's."""
    local = checkpoints(runs["local"] / "rec_home")
    distributed = checkpoints(runs["distributed"] / "rec_home")
    assert sorted(local) == [f"checkpoints/attention_id/{week}.pt" for week in WEEKS]
    assert sorted(distributed) == sorted(local)
    for name, expected in local.items():
        got = distributed[name]
        assert (got["weights_sha256"], got["rest_sha256"]) == (expected["weights_sha256"], expected["rest_sha256"]), name
    for work, found in ((runs["local"], local), (runs["distributed"], distributed)):
        features = work / "rec_home" / "artifacts" / "features"
        for name, checkpoint in found.items():
            week = Path(name).stem
            for kind, recorded in checkpoint["feature_hashes"].items():
                assert recorded == directory_sha256(features / kind / week), (work.name, name, kind)
