"""`make compare` on the tiny preset: every peer adapter and every two-tower variant is measured by the same
evaluation code, on the same week, and the two-tower rows are the very numbers the `evaluation_metrics` asset
stored for that week."""

import json
import math
import os

import duckdb
import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance

from rec_assets.bench.compare.cli import main, two_tower_configs
from rec_assets.bench.compare.inputs import recorded_training, week_checkpoints
from rec_assets.bench.compare.protocols import PLATFORM_TRAINING
from rec_assets.bench.compare.records import RECORD_KEYS, record_system, write_cold_start
from rec_assets.definitions import build_definitions
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import TrainingResource
from rec_assets.storage.hashing import file_sha256
from rec_assets.model.variants import ABLATIONS, VARIANTS

defs = build_definitions()

WEEK = SCORING_WEEKS.get_last_partition_key()
PEERS = ("als", "bpr", "lightfm")


@pytest.fixture(scope="module")
def compared(materialised, rec_home, tmp_path_factory):
    pytest.importorskip("implicit")
    pytest.importorskip("lightfm")
    assert all(result.success for result in materialised)
    out = tmp_path_factory.mktemp("compare")
    assert main(["--rec-home", str(rec_home), "--weeks", WEEK, "--grid", "small", "--threads", "1",
                 "--holdout-two-tower", "attention_no_id", "--seeds", "2", "--resamples", "500",
                 "--type-ablation", "--out", str(out)]) == 0
    return (json.loads((out / "compare.json").read_text()), (out / "compare.md").read_text(),
            json.loads((out / "cold_start.json").read_text()))


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


def test_every_two_tower_system_named_trains_with_the_platforms_settings_and_the_overrides():
    training = PLATFORM_TRAINING.with_overrides(["epochs=2"])
    configs = two_tower_configs(["lightfm", "two_tower:attention_no_id", "two_tower:categorical"], training, 1)
    assert set(configs) == {"two_tower:attention_no_id", "two_tower:categorical"}
    assert all(c.train == training and c.train.epochs == 2 for c in configs.values())
    assert configs["two_tower:categorical"].variant == "categorical"


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
    _, seconds, _ = week_checkpoints(artifacts, WEEK, recorded)
    assert seconds == {"categorical": 12.5}  # synopsis's record names another file: no time reported for it


OPTIONAL_KEYS = {"n_pairs", "seeds", "mean", "std"}


def test_cold_start_json_holds_every_protocol_and_system_with_exactly_the_record_keys(compared):
    records = compared[2]
    assert records and all(set(RECORD_KEYS) <= set(r) <= set(RECORD_KEYS) | OPTIONAL_KEYS for r in records)
    assert {r["dataset"] for r in records} == {"simulator"}
    assert {r["protocol"] for r in records} == {"weekly_warm", "weekly_cold", "weekly_holdout", "lightfm_holdout"}
    assert {r["category"] for r in records} <= {"movie", "tv", "all"}
    assert {r["metric"] for r in records} == {"p@6", "r@6", "r@20", "auc"}
    assert len({r["encoders"] for r in records}) == 1 and "+" in records[0]["encoders"]
    systems = {r["system"] for r in records if r["protocol"] == "weekly_warm"}
    assert systems >= {*VARIANTS, "lightfm", "popularity", "random"}
    lightfm = [r for r in records if r["protocol"] == "lightfm_holdout"]
    assert {r["system"] for r in lightfm} == {"attention_no_id", "lightfm", "popularity", "random"}
    assert {r["metric"] for r in lightfm} == {"auc", "p@6", "r@6", "r@20"}
    for r in records:
        if r["system"] == "popularity" and r["protocol"] in ("weekly_holdout", "lightfm_holdout"):
            assert r["value"] is None and r["n_users"] > 0  # n/a: a held-out title has no popularity
        elif r["value"] is not None and r["ci_low"] is not None:
            assert r["ci_low"] - 1e-12 <= r["value"] <= r["ci_high"] + 1e-12, r
            assert r["n_users"] > 0
    for r in lightfm:
        if r["value"] is not None:
            assert r["seeds"] == [0, 1] and r["std"] is not None


def test_pooled_values_of_one_week_are_the_weekly_metrics(compared):
    results, records = compared[0]["results"], compared[2]
    for r in records:
        if r["protocol"] != "weekly_warm" or r["value"] is None:
            continue
        metric = {"p@6": "precision", "r@6": "recall"}[r["metric"]]
        [row] = [x for x in _rows(results, protocol="standard", candidate_set="warm", category=r["category"],
                                  metric=metric) if record_system(x["system"]) == r["system"]]
        assert r["value"] == pytest.approx(row["value"], abs=1e-12)
        assert r["n_users"] == row["evaluated_users"] == r["n_pairs"]


def test_comparisons_are_paired_with_a_verdict(compared):
    compared_rows = compared[0]["comparisons"]
    assert compared_rows and "## Comparisons" in compared[1] and "lightfm_holdout, all" in compared[1]
    for c in compared_rows:
        # the peers, or the full model for a type-ablation variant
        assert c["opponent"] in (("attention_no_id",) if c["variant"] in ABLATIONS else ("lightfm", "popularity",
                                                                                             "random"))
        assert c["verdict"] in {"not separable", "n/a", f"{c['variant']} beats {c['opponent']}",
                                f"{c['opponent']} beats {c['variant']}"}
    holdout = [c for c in compared_rows if c["protocol"] == "weekly_holdout" and c["opponent"] == "popularity"]
    assert holdout and all(c["verdict"] == "n/a" for c in holdout)


def test_cold_start_writer_replaces_only_its_own_dataset(tmp_path):
    path = tmp_path / "cold_start.json"
    record = dict(zip(RECORD_KEYS, ["simulator", "weekly_cold", "random", "unknown", "movie", "p@6", 0.1, 0.05,
                                    0.15, 10]))
    write_cold_start(path, "simulator", [record])
    write_cold_start(path, "movielens-100k", [{**record, "dataset": "movielens-100k", "value": 0.2}])
    write_cold_start(path, "simulator", [{**record, "value": 0.3}])
    written = json.loads(path.read_text())
    assert sorted((r["dataset"], r["value"]) for r in written) == [("movielens-100k", 0.2), ("simulator", 0.3)]


def test_cold_start_writer_keeps_the_protocols_a_run_did_not_measure(tmp_path):
    path = tmp_path / "cold_start.json"
    record = dict(zip(RECORD_KEYS, ["movielens-100k", "weekly_warm", "random", "unknown", "movie", "p@6", 0.1,
                                    0.05, 0.15, 10]))
    write_cold_start(path, "movielens-100k", [record, {**record, "protocol": "lightfm_holdout", "value": 0.2}])
    write_cold_start(path, "movielens-100k", [{**record, "value": 0.3}])
    written = json.loads(path.read_text())
    assert sorted((r["protocol"], r["value"]) for r in written) == [("lightfm_holdout", 0.2), ("weekly_warm", 0.3)]


def test_systems_other_assets_stored_flow_through_as_pooled_rows_without_interval():
    import pandas as pd

    from rec_assets.bench.compare.inputs import stored_rows
    from rec_assets.bench.compare.records import cold_start_records, per_user_long

    with duckdb.connect(":memory:") as conn:
        conn.execute("CREATE TABLE evaluation_metrics (scoring_week VARCHAR, variant VARCHAR, candidate_set VARCHAR,"
                     " category VARCHAR, metric VARCHAR, value DOUBLE, evaluated_users BIGINT)")
        conn.execute("INSERT INTO evaluation_metrics VALUES ('w1', 'oracle_metadata', 'cold', 'movie', 'precision',"
                     " 0.5, 10), ('w1', 'random', 'cold', 'movie', 'precision', 0.1, 10)")
        rows = stored_rows(conn, "w1", {"random"})
    assert rows["system"].tolist() == ["oracle_metadata"] and rows["protocol"].tolist() == ["standard"]
    week2 = rows.assign(value=0.2, evaluated_users=30)
    results = pd.concat([rows.assign(scoring_week="w1"), week2.assign(scoring_week="w2")], ignore_index=True)
    weekly = pd.DataFrame({"system": "random", "protocol": "standard", "candidate_set": "cold", "category": "movie",
                           "user_id": range(40), "n_truth": 1, "p@6": 0.1, "r@6": 0.5, "scoring_week": "w1"})
    records = cold_start_records(per_user_long(weekly, None, 6), results, None, dataset="simulator",
                                 encoders="unknown", k=6)
    [oracle] = [r for r in records if r["system"] == "oracle_metadata"]
    assert oracle["protocol"] == "weekly_cold" and oracle["metric"] == "p@6"
    assert oracle["value"] == pytest.approx((0.5 * 10 + 0.2 * 30) / 40)  # pooled over the weeks' pairs
    assert oracle["ci_low"] is None and oracle["n_pairs"] == 40 and oracle["n_users"] == 40


def test_oracle_rows_get_per_user_intervals_and_equal_the_stored_ones(compared):
    results, records = compared[0]["results"], compared[2]
    with duckdb.connect(str(defs.resources["warehouse_db"].path()), read_only=True) as conn:
        stored = conn.execute("SELECT variant, candidate_set, category, metric, value FROM evaluation_metrics"
                              " WHERE scoring_week = $w AND variant LIKE 'oracle%'", {"w": WEEK}).fetchall()
    assert stored
    for variant, cset, category, metric, value in stored:
        [row] = _rows(results, system=variant, protocol="standard", candidate_set=cset, category=category,
                      metric=metric)
        assert (row["value"] is None) if value is None or math.isnan(value) else \
            row["value"] == pytest.approx(value, abs=1e-9)
    oracle = [r for r in records if r["system"].startswith("oracle")]
    assert {r["protocol"] for r in oracle} == {"weekly_cold"}
    assert all(r["ci_low"] is not None for r in oracle if r["value"] is not None and r["n_users"] > 1)


def test_the_type_ablation_retrains_attention_without_each_type_and_compares_it_with_the_full_model(compared):
    report, markdown, cold_start = compared
    for variant in ABLATIONS:
        rows = [r for r in cold_start if r["system"] == variant and r["protocol"] == "weekly_cold"]
        assert rows and all(r["ci_low"] is not None for r in rows if r["metric"] == "p@6"), variant
        paired = [c for c in report["comparisons"] if c["variant"] == variant and c["opponent"] == "attention_no_id"]
        assert {c["protocol"] for c in paired} >= {"weekly_warm", "weekly_cold"}
        assert all(c["verdict"] for c in paired)
    assert not [r for r in cold_start if r["system"] in ABLATIONS and r["protocol"] == "lightfm_holdout"]


def test_the_paper_findings_are_judged_from_the_run_and_reported(compared):
    report, markdown, _ = compared
    findings = report["paper_findings"]
    assert {f["finding"] for f in findings} >= {"categorical_best_single_type", "attention_beats_concat",
                                                "attention_id_best_warm", "attention_no_id_best_cold",
                                                "cover_art_lowest_attention"}
    assert all(f["verdict"] in ("holds", "does not hold", "not separable", "not measured") for f in findings)
    weights = report["attention_means"]["attention_no_id"]["movie"]
    assert set(weights) == {"categorical", "synopsis", "cover_art"} and abs(sum(weights.values()) - 1) < 1e-3
    assert "## The paper's findings on simulator" in markdown
