"""Snapshot of the code location: asset keys, check names, jobs and schedules; code versions; a clean load.

A change to the graph's shape shows up here first: update the snapshot in the same change, on purpose.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from rec_assets.definitions import build_definitions

defs = build_definitions()

PROJECT_ROOT = Path(__file__).resolve().parents[2]

ASSET_KEYS = {
    "raw_titles", "raw_users", "raw_watch_events", "raw_title_tags",
    "split_windows", "cold_start_titles", "title_popularity", "week_titles",
    "title_categorical_features", "title_synopsis_embeddings", "title_cover_art_embeddings",
    "tower_checkpoint_synopsis", "tower_checkpoint_cover_art", "tower_checkpoint_categorical",
    "tower_checkpoint_ncf_extension", "tower_checkpoint_concat_no_id", "tower_checkpoint_attention_no_id",
    "tower_checkpoint_concat_id", "tower_checkpoint_attention_id",
    "evaluation_metrics", "weekly_recommendations", "evaluation_summary",
    "tower_checkpoint_attention_id_ddp",
}

TOWER_VARIANTS = ["synopsis", "cover_art", "categorical", "ncf_extension", "concat_no_id", "attention_no_id",
                  "concat_id", "attention_id"]

CHECKS = {
    "raw_titles": {"raw_titles_meet_expectations", "raw_titles_missing_synopsis_or_image_share"},
    "raw_watch_events": {"raw_events_meet_expectations", "raw_events_rejected_share_within_limit"},
    "split_windows": {"split_label_window_disjoint_from_training", "split_windows_meet_expectations",
                      "split_week_has_enough_labelled_users"},
    "cold_start_titles": {"cold_start_titles_have_no_history"},
    "title_categorical_features": {"categorical_cover_every_week_title"},
    **{
        f"title_{kind}": {f"{short}_cover_every_week_title", f"{short}_missing_share_below_threshold",
                          f"{short}_values_finite", f"{short}_width_as_configured"}
        for kind, short in (("synopsis_embeddings", "synopsis"), ("cover_art_embeddings", "cover_art"))
    },
    **{
        f"tower_checkpoint_{v}": {f"tower_{v}_loss_decreased", f"tower_{v}_reloads_identically",
                                  f"tower_{v}_weights_finite"}
        for v in TOWER_VARIANTS
    },
}

JOBS = {"ingest_history", "materialize_scoring_week", "summarize_weeks", "weekly_refresh"}
SCHEDULES = {"weekly_refresh_schedule"}
SENSORS: set[str] = set()


def test_asset_keys():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == ASSET_KEYS


def test_check_names_per_asset():
    graph = defs.resolve_asset_graph()
    found: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        found.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert found == CHECKS


def test_jobs_schedules_and_sensors():
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs() if not job.name.startswith("__")} == JOBS
    assert {schedule.name for schedule in repository.schedule_defs} == SCHEDULES
    assert {sensor.name for sensor in repository.sensor_defs} == SENSORS


def test_every_asset_has_a_code_version():
    graph = defs.resolve_asset_graph()
    missing = sorted(key.to_user_string() for key in graph.get_all_asset_keys() if not graph.get(key).code_version)
    assert missing == []


def _test_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return {**os.environ, "DAGSTER_HOME": str(home), "VIRTUAL_ENV": sys.prefix}


def test_dg_check_defs_loads_the_code_location(tmp_path):
    """`dg check defs` from the project root, as CI or a user runs it ([tool.dg] in pyproject.toml)."""
    dg = Path(sys.executable).with_name("dg")
    done = subprocess.run([str(dg), "check", "defs"], cwd=PROJECT_ROOT, env=_test_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "All definitions loaded successfully." in output
    assert "DeprecationWarning" not in output and "SupersessionWarning" not in output, output


LOAD_AND_RESOLVE = textwrap.dedent("""
    import json, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from rec_assets.definitions import build_definitions
        defs = build_definitions()
        repository = defs.get_repository_def()
        repository.get_all_jobs()
        defs.resolve_asset_graph()
    print(json.dumps([[w.category.__name__, [c.__name__ for c in w.category.__mro__], w.filename, w.lineno,
                       str(w.message)[:300]] for w in caught]))
""")


def test_the_projects_code_raises_no_deprecation_or_supersession_warning(tmp_path):
    """`dg check defs` does not print Python warnings, so load the definitions the way it does (import, then
    resolve every job) in a fresh interpreter and look at every warning raised from the project's own files."""
    done = subprocess.run([sys.executable, "-c", LOAD_AND_RESOLVE], cwd=PROJECT_ROOT, env=_test_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import json

    warnings_seen = json.loads(done.stdout.strip().splitlines()[-1])
    package = str(PROJECT_ROOT / "rec_assets")
    ours = [w for w in warnings_seen if w[2].startswith(package)
            and ({"DeprecationWarning", "FutureWarning"} & set(w[1]))]  # SupersessionWarning is a FutureWarning
    assert ours == []


DG_LIST_SNAPSHOT = Path(__file__).with_name("dg_list_defs.json")


def dg_list_defs(env: dict[str, str]) -> dict[str, list]:
    """`dg list defs --json` from the project root, reduced to what shapes the graph (names, groups, deps,
    kinds, types): descriptions may change without a snapshot update."""
    import json

    dg = Path(sys.executable).with_name("dg")
    done = subprocess.run([str(dg), "list", "defs", "--json"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = json.loads(done.stdout[done.stdout.index("{"):])
    return {
        "assets": sorted([a["asset_key"], a["group_name"], sorted(a["dependency_keys"]), sorted(a["kinds"])]
                         for a in listed["assets"]),
        "asset_checks": sorted(c["key"] for c in listed["asset_checks"]),
        "jobs": sorted(j["name"] for j in listed["jobs"]),
        "schedules": sorted([s["name"], s["cron_schedule"]] for s in listed["schedules"]),
        "sensors": sorted(s["name"] for s in listed["sensors"]),
        "resources": sorted([r["name"], r["type"]] for r in listed["resources"]),
    }


def test_dg_list_defs_matches_the_committed_snapshot(tmp_path):
    """Every asset, check, job, schedule and resource `dg list defs` shows. A change to the graph updates
    ``dg_list_defs.json`` on purpose: ``REC_UPDATE_SNAPSHOT=1 pytest`` rewrites it."""
    import json

    listed = dg_list_defs(_test_env(tmp_path))
    if os.environ.get("REC_UPDATE_SNAPSHOT"):
        DG_LIST_SNAPSHOT.write_text(json.dumps(listed, indent=1) + "\n")
    assert listed == json.loads(DG_LIST_SNAPSHOT.read_text())
    assert {a[0] for a in listed["assets"]} == ASSET_KEYS
    assert set(listed["jobs"]) >= JOBS and {s[0] for s in listed["schedules"]} == SCHEDULES
    assert {"source", "windows", "warehouse_db", "artifacts", "features", "training", "evaluation"} <= {
        name for name, _ in listed["resources"]}


def test_workspace_yaml_loads_the_same_definitions(tmp_path):
    """`dagster dev -w workspace.yaml` (the classic entry point) serves the code location dg loads: the public
    `dagster definitions validate -w workspace.yaml` loads it through the workspace, and `dagster asset list` on
    the module the workspace names lists the assets of the committed `dg list defs` snapshot."""
    import json

    import yaml

    env = _test_env(tmp_path)
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "All code locations passed validation." in output, output[-3000:]

    (entry,) = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"]
    target = entry["python_module"]
    done = subprocess.run([str(dagster), "asset", "list", "-m", target["module_name"],
                           "-d", target.get("working_directory", ".")], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    keys = {line.strip() for line in done.stdout.splitlines() if line.strip()}
    assert keys == {a[0] for a in json.loads(DG_LIST_SNAPSHOT.read_text())["assets"]}
    assert keys == ASSET_KEYS
