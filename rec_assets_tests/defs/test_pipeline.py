"""The whole graph for the latest scoring week of the simulator's tiny preset, as `make run` materialises it.

One materialisation (a session fixture) backs every test here: the tables it leaves, the checks it ran,
and the lineage from a recommendation row back to its checkpoint, run and inputs.
"""

from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey

from rec_assets.definitions import build_definitions
from rec_assets.defs.jobs import OPT_IN_ASSETS
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.model.variants import VARIANTS
from rec_assets.storage.hashing import file_sha256

defs = build_definitions()

WEEK = SCORING_WEEKS.get_last_partition_key()


@pytest.fixture(scope="module")
def instance(tiny_instance):
    return tiny_instance


@pytest.fixture(scope="module")
def warehouse(materialised):
    path = defs.resources["warehouse_db"].path()
    with duckdb.connect(str(path), read_only=True) as conn:
        yield conn


def test_every_stage_succeeds_and_every_check_passes(materialised):
    for result in materialised:
        assert result.success
        failed = [e.check_name for e in result.get_asset_check_evaluations()
                  if not e.passed and e.severity.value == "ERROR"]
        assert failed == []


def test_every_asset_of_the_graph_is_materialised_for_the_week(materialised, instance):
    graph = defs.resolve_asset_graph()
    opt_in = set(OPT_IN_ASSETS.resolve(graph))
    assert opt_in == {AssetKey("tower_checkpoint_attention_id_ddp")}
    for key in set(graph.get_all_asset_keys()) - opt_in:
        latest = instance.get_latest_materialization_event(key)
        assert latest is not None, key


def test_the_split_has_four_windows_and_cold_start_titles(warehouse):
    windows = warehouse.execute("SELECT window_name, events FROM split_windows WHERE scoring_week = $w ORDER BY 1",
                                {"w": WEEK}).fetchall()
    assert [name for name, _ in windows] == ["X", "X_prime", "Y", "Y_prime"]
    assert all(events > 0 for _, events in windows)
    cold = warehouse.execute("SELECT count(*) FROM cold_start_titles WHERE scoring_week = $w", {"w": WEEK}).fetchone()[0]
    assert cold > 0


def test_evaluation_holds_every_variant_and_baseline_for_every_segment(warehouse):
    rows = warehouse.execute(
        "SELECT variant, count(DISTINCT (candidate_set, category, metric)) FROM evaluation_metrics"
        " WHERE scoring_week = $w GROUP BY variant", {"w": WEEK}).fetchall()
    # 2 candidate sets x 2 categories x 4 metrics; the simulator's oracle ceilings rank cold titles only
    assert dict(rows) == {**{v: 16 for v in [*VARIANTS, "random", "popularity"]}, "oracle_metadata": 8, "oracle_all": 8,
                          "oracle_linear_read": 8}


def test_recommendations_exclude_titles_watched_in_the_scoring_history(warehouse):
    watched_again = warehouse.execute(
        """
        SELECT count(*) FROM weekly_recommendations AS r
        JOIN split_windows AS w ON w.scoring_week = r.scoring_week AND w.window_name = 'X_prime'
        JOIN raw_watch_events AS e ON e.user_id = r.user_id AND e.title_id = r.title_id
            AND e.ts >= w.window_start AND e.ts < w.window_end
        WHERE r.scoring_week = $w
        """, {"w": WEEK}).fetchone()[0]
    assert watched_again == 0


def test_new_this_week_lists_hold_only_cold_start_titles(warehouse):
    outside = warehouse.execute(
        "SELECT count(*) FROM weekly_recommendations AS r ANTI JOIN cold_start_titles AS c"
        " ON c.scoring_week = r.scoring_week AND c.title_id = r.title_id"
        " WHERE r.scoring_week = $w AND r.list = 'new_this_week'", {"w": WEEK}).fetchone()[0]
    assert outside == 0


def test_a_recommendation_traces_back_to_its_checkpoint_run_and_inputs(warehouse, instance):
    variant, sha256, run_id = warehouse.execute(
        "SELECT variant, checkpoint_sha256, checkpoint_run_id FROM weekly_recommendations"
        " WHERE scoring_week = $w AND list = 'all' LIMIT 1", {"w": WEEK}).fetchone()
    key = AssetKey(f"tower_checkpoint_{variant}")
    records = instance.fetch_materializations(key, limit=10).records
    match = [r for r in records if r.partition_key == WEEK and r.run_id == run_id]
    assert len(match) == 1
    metadata = match[0].asset_materialization.metadata
    assert metadata["sha256"].value == sha256
    inputs = metadata["input_data_versions"].value
    for feature in ("title_categorical_features", "title_synopsis_embeddings", "title_cover_art_embeddings"):
        feature_record = instance.fetch_materializations(AssetKey(feature), limit=1).records[0]
        kind = {"title_categorical_features": "categorical", "title_synopsis_embeddings": "synopsis",
                "title_cover_art_embeddings": "cover_art"}[feature]
        assert feature_record.asset_materialization.metadata["content_hash"].value == inputs[kind]


def test_the_audit_walks_from_a_recommendation_to_checkpoint_features_and_windows(warehouse, instance):
    from rec_assets.cli.audit import audit_recommendation

    user = warehouse.execute("SELECT min(user_id) FROM weekly_recommendations WHERE scoring_week = $w",
                             {"w": WEEK}).fetchone()[0]
    trail = audit_recommendation(instance, defs.resources["warehouse_db"], WEEK, user)
    assert {r["list"] for r in trail.recommendations} == {"all", "new_this_week"}
    assert set(trail.checkpoints) == {"attention_id", "attention_no_id"}
    assert all(info["matches"] for info in trail.checkpoints.values())
    # The trail names the checkpoint and artifact files themselves, which hash as recorded.
    assert all(file_sha256(info["path"]) == info["sha256"] and info["path"].endswith(f"{WEEK}.pt")
               for info in trail.checkpoints.values())
    assert set(trail.features) == {"categorical", "synopsis", "cover_art"}
    assert all(Path(info["path"]).is_dir() and "/features/" in info["path"] for info in trail.features.values())
    assert [w["window_name"] for w in trail.windows] == ["X", "X_prime", "Y", "Y_prime"]
    text = "\n".join(trail.lines())
    assert f"user {user}" in text and "tower_checkpoint_attention_id" in text


def test_retraining_a_variant_for_the_same_week_gives_an_identical_checkpoint(materialised, instance):
    key = AssetKey("tower_checkpoint_categorical")
    before = instance.fetch_materializations(key, limit=1).records[0].asset_materialization.metadata["sha256"].value
    job = defs.resolve_job_def("materialize_scoring_week")
    result = job.execute_in_process(instance=instance, partition_key=WEEK,
                                    asset_selection=[key], raise_on_error=False)
    assert result.success
    after = instance.fetch_materializations(key, limit=1).records[0].asset_materialization.metadata["sha256"].value
    assert after == before


def test_attention_without_id_ranks_a_watched_cold_title_above_unwatched_ones_more_often_than_chance(warehouse):
    """On the tiny week: for each user with a new Y' watch of a cold-start title, the share of (watched,
    unwatched) cold-title pairs that attention w/o ID orders correctly (a per-user AUC), averaged over users.
    Chance is 0.5. The cold set is small (a handful of titles), so the margin asked for is small too."""
    import numpy as np

    from rec_assets.model.inputs import ANALYSES, load_week
    from rec_assets.evaluation.week import history_exclusion, new_watch_truth
    from rec_assets.model.checkpoint import embed_items, embed_users, load_checkpoint
    from rec_assets.split.windows import WindowLengths, week_windows
    from rec_assets.sqlmodels.runner import query
    from rec_assets.storage.artifacts import load_stored_ref

    artifacts_root = defs.resources["artifacts"].path()
    refs = {kind: load_stored_ref(artifacts_root, [asset], WEEK) for kind, asset in
            [("categorical", "title_categorical_features"), ("synopsis", "title_synopsis_embeddings"),
             ("cover_art", "title_cover_art_embeddings")]}
    checkpoint = load_stored_ref(artifacts_root, ["tower_checkpoint_attention_no_id"], WEEK)
    window = SCORING_WEEKS.time_window_for_partition_key(WEEK)
    catalogue = query(warehouse, ANALYSES["week_catalogue"], {"scoring_week": WEEK}).df()
    score = load_week(warehouse, week_windows(window.start, window.end, WindowLengths()), catalogue,
                      refs["categorical"], refs["synopsis"], refs["cover_art"], "score")
    model = load_checkpoint(checkpoint.path).model
    items, users = embed_items(model, score.items), embed_users(model, score.users, score.items)
    cold = np.flatnonzero(catalogue["is_cold_start"].to_numpy(bool))
    user_rows, title_rows = new_watch_truth(score, history_exclusion(score.users))
    aucs = []
    for user in np.unique(user_rows[np.isin(title_rows, cold)]):
        watched = np.isin(cold, title_rows[user_rows == user])
        if watched.all():
            continue
        scores = items[cold] @ users[user]
        aucs.append((scores[watched][:, None] > scores[~watched][None, :]).mean())
    assert len(aucs) >= 30
    assert np.mean(aucs) > 0.5


def test_the_report_command_prints_the_weeks_tables_from_the_warehouse(materialised, capsys):
    from rec_assets.cli.main import main

    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert f"1 evaluated weeks, {WEEK} .. {WEEK}: means over the weeks" in out
    assert "**Cold titles, K = 6, lift vs Random**" in out
    spread = out[out.index("Mean ± std across weeks"):]
    assert "| attention_no_id |" in spread and "| random |" in spread
    assert WEEK in out[out.index("Per week:"):]
