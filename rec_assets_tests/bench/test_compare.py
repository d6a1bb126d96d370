"""`make compare` on the tiny preset: every peer adapter and every two-tower variant is measured by the same
evaluation code, on the same week, and the two-tower rows are the very numbers the `evaluation_metrics` asset
stored for that week."""

import json
import math
import os

import duckdb
import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance

from rec_assets.bench.compare import PLATFORM_TRAINING, _checkpoints, main, recorded_training
from rec_assets.definitions import defs
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.towers import TrainingResource
from rec_assets.model.checkpoint import file_sha256
from rec_assets.model.variants import VARIANTS

WEEK = SCORING_WEEKS.get_last_partition_key()
PEERS = ("als", "bpr", "lightfm")


@pytest.fixture(scope="module")
def compared(materialised, rec_home, tmp_path_factory):
    pytest.importorskip("implicit")
    pytest.importorskip("lightfm")
    assert all(result.success for result in materialised)
    out = tmp_path_factory.mktemp("compare")
    assert main(["--rec-home", str(rec_home), "--weeks", WEEK, "--grid", "small", "--threads", "1",
                 "--holdout-two-tower", "attention_no_id", "--out", str(out)]) == 0
    return json.loads((out / "compare.json").read_text()), (out / "compare.md").read_text()


def _rows(results, **where):
    return [r for r in results if all(r[k] == v for k, v in where.items())]


def test_every_peer_baseline_and_variant_gets_p_r_cov_concov_for_warm_titles(compared):
    results = compared[0]["results"]
    for system in (*PEERS, "random", "popularity", *VARIANTS):
        metrics = {r["metric"] for r in _rows(results, system=system, protocol="standard", candidate_set="warm")}
        assert metrics == {"precision", "recall", "coverage", "converted_coverage"}, system
        precision = _rows(results, system=system, protocol="standard", candidate_set="warm", metric="precision")
        assert all(r["value"] is not None and 0.0 <= r["value"] <= 1.0 for r in precision
                   if r["evaluated_users"] > 0), system


def test_two_tower_rows_equal_the_evaluation_metrics_asset_of_the_week(compared):
    results = compared[0]["results"]
    with duckdb.connect(str(defs.resources["warehouse_db"].path()), read_only=True) as conn:
        stored = conn.execute("SELECT variant, candidate_set, category, metric, value FROM evaluation_metrics"
                              " WHERE scoring_week = $w", {"w": WEEK}).fetchall()
    stored = {(v, c, cat, m): value for v, c, cat, m, value in stored if v in VARIANTS}
    assert len(stored) == 16 * len(VARIANTS)
    for (variant, cset, category, metric), value in stored.items():
        [row] = _rows(results, system=variant, protocol="standard", candidate_set=cset, category=category,
                      metric=metric)
        if value is None or math.isnan(value):
            assert row["value"] is None
        else:
            assert row["value"] == pytest.approx(value, abs=1e-9)


def test_als_and_bpr_cannot_rank_cold_titles_and_lightfm_can(compared):
    results = compared[0]["results"]
    for peer in ("als", "bpr"):
        assert all(r["value"] is None for r in _rows(results, system=peer, candidate_set="cold"))
    cold = _rows(results, system="lightfm", protocol="standard", candidate_set="cold", metric="precision")
    assert any(r["value"] is not None for r in cold if r["evaluated_users"] > 0)


def test_the_holdout_protocol_retrains_the_two_tower_variant_next_to_lightfm(compared):
    results = compared[0]["results"]
    for system in ("lightfm", "two_tower:attention_no_id", "random"):
        rows = _rows(results, system=system, protocol="holdout", metric="precision")
        assert rows and any(r["value"] is not None for r in rows), system
    assert "two_tower:attention_no_id" in compared[1]


def test_tuning_is_stated_and_reads_the_first_week_only(compared):
    settings, tuning = compared[0]["settings"], compared[0]["tuning"]
    assert set(tuning) == set(PEERS)
    assert all(t["tune_week"] == WEEK for t in tuning.values())
    assert settings["grid"] == "small"


def test_two_tower_training_for_holdout_is_the_platforms():
    assert PLATFORM_TRAINING == TrainingResource().train_config()


def test_training_seconds_come_from_the_run_that_wrote_that_very_checkpoint(materialised, rec_home, tmp_path):
    artifacts = rec_home / "artifacts"
    path = artifacts / "checkpoints" / "categorical" / f"{WEEK}.pt"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = DagsterInstance.get()
        for variant, sha256 in (("categorical", file_sha256(path)), ("synopsis", "0" * 64)):
            instance.report_runless_asset_event(AssetMaterialization(
                AssetKey(f"tower_checkpoint_{variant}"), partition=WEEK,
                metadata={"sha256": sha256, "wall_seconds": 12.5}))
    finally:
        os.environ["DAGSTER_HOME"] = previous or ""
    recorded = recorded_training(home, WEEK, list(VARIANTS))
    assert set(recorded) == {"categorical", "synopsis"}
    _, seconds, _ = _checkpoints(artifacts, WEEK, recorded)
    assert seconds == {"categorical": 12.5}  # synopsis's record names another file: no time reported for it
