"""The cluster deployment: its code location loads with the cluster configuration, and every asset's storage
resolves to the shared location (tables in the Parquet store, files under the shared REC_HOME).

``deploy/k8s/definitions.py`` imports ``dagster_k8s``, which the project does not depend on; where it is
not installed a stand-in module provides ``k8s_job_executor`` (Dagster's multiprocess executor, which takes
the same ``max_concurrent`` setting), so what is tested is the wiring, not dagster-k8s.
"""

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, Definitions, materialize, multiprocess_executor

from rec_assets.defs import split
from rec_assets.cli.stages import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from rec_assets.defs.jobs import INGEST_JOB
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import ArtifactsResource, WarehouseResource, resolved
from rec_assets.storage.artifacts import REFS_FOLDER

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT_ROOT / "deploy" / "k8s"
STORAGE_RESOURCES = ("warehouse_db", "artifacts", "io_manager")


@pytest.fixture()
def shared(tmp_path, monkeypatch) -> dict[str, Path]:
    """The cluster's environment: tables in a Parquet store, REC_HOME on a shared volume (here: tmp paths)."""
    locations = {"tables": tmp_path / "shared" / "tables", "home": tmp_path / "shared" / "rec_home"}
    monkeypatch.setenv("REC_TABLE_STORE", str(locations["tables"]))
    monkeypatch.setenv("REC_HOME", str(locations["home"]))
    if importlib.util.find_spec("dagster_k8s") is None:
        stand_in = types.ModuleType("dagster_k8s")
        stand_in.k8s_job_executor = multiprocess_executor
        monkeypatch.setitem(sys.modules, "dagster_k8s", stand_in)
    return locations


def load_cluster_definitions():
    spec = importlib.util.spec_from_file_location("rec_assets_cluster_definitions", DEPLOY / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs()  # the @definitions entry point, called as Dagster calls it


def storage_location(key: str, resource) -> Path | str:
    if key == "warehouse_db":
        return resolved(resource).location()
    if key == "artifacts":
        return resolved(resource).path()
    return resolved(resource.artifacts).path(REFS_FOLDER)  # ArtifactRefsIOManager: under the artifacts root


def test_the_cluster_code_location_runs_steps_as_kubernetes_jobs(shared):
    defs = load_cluster_definitions()
    assert defs.executor.name == "k8s"
    Definitions.validate_loadable(defs)
    for job in defs.resolve_all_job_defs():
        assert job.executor_def.name == "k8s", job.name


def test_every_asset_resolves_its_storage_to_the_shared_location(shared):
    defs = load_cluster_definitions()
    resources = defs.resources
    graph = defs.resolve_asset_graph()
    assets = {assets_def for key in graph.get_all_asset_keys() for assets_def in [graph.get(key).assets_def]}
    assert assets
    for assets_def in assets:
        keys = [k for k in STORAGE_RESOURCES if k in assets_def.required_resource_keys]
        assert keys, f"{assets_def.key} stores nothing through a known resource"
        for key in keys:
            where = str(storage_location(key, resources[key]))
            shared_root = shared["tables"] if key == "warehouse_db" else shared["home"]
            assert where.startswith(str(shared_root)), f"{assets_def.key}: {key} resolves to {where}"
    warehouse = resolved(resources["warehouse_db"])
    assert warehouse.parquet_store() is not None and not warehouse.path().exists()


def test_raw_and_split_write_parquet_partitions_to_the_shared_store(shared):
    """The cluster definitions' own ingest job (every event week, one run), then the split of the last week."""
    defs = load_cluster_definitions()
    keys = SCORING_WEEKS.get_partition_keys()
    week = keys[-1]
    ingest = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
    )
    assert ingest.success
    result = materialize(
        split.split_assets,
        resources={k: defs.resources[k] for k in ("windows", "warehouse_db")},
        partition_key=week,
    )
    assert result.success
    tables = shared["tables"]
    assert (tables / "raw_titles" / "part-0.parquet").is_file()
    assert (tables / "raw_users" / "part-0.parquet").is_file()
    assert list((tables / "raw_watch_events").glob("event_week=*/part-0.parquet"))
    for name in ("split_windows", "cold_start_titles", "title_popularity", "week_titles"):
        assert (tables / name / f"scoring_week={week}" / "part-0.parquet").is_file(), name
    assert not list(shared["home"].rglob("*.duckdb")), "no DuckDB file: every table went to the store"
    with resolved(defs.resources["warehouse_db"]).connect() as conn:
        assert conn.execute("SELECT count(*) FROM split_windows WHERE scoring_week = $w", {"w": week}).fetchone()[0] == 4


def test_an_explicit_duckdb_file_is_the_duckdb_store(shared, tmp_path):
    assert WarehouseResource(database=str(tmp_path / "w.duckdb")).parquet_store() is None
    assert WarehouseResource(table_store="duckdb").parquet_store() is None
    assert WarehouseResource().parquet_store().location == str(shared["tables"])
    assert ArtifactsResource().path("x") == shared["home"].resolve() / "artifacts" / "x"


def test_the_example_configuration_files_parse_and_name_the_shared_store():
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert instance["concurrency"]["pools"]["granularity"] == "op"
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    env = {e["name"]: e.get("value") for e in deployment["env"]}
    assert env["REC_TABLE_STORE"].startswith("s3://")
    assert env["REC_HOME"].startswith("/shared")
    assert "/app/deploy/k8s/definitions.py" in deployment["dagsterApiGrpcArgs"]
