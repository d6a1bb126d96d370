"""The evaluation asset's oracle rows: on the simulator only, on the cold-start segments, on the models' users."""

import duckdb
import pytest
from dagster import AssetKey

from rec_assets.definitions import build_definitions
from rec_assets.defs.evaluation import oracle_factors_for
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import SourceResource
from rec_assets.evaluation.report import table2_markdown
from rec_assets.sources.simulator import ORACLE_FILE
from rec_assets_tests.conftest import SHARED_DATA

defs = build_definitions()

WEEK = SCORING_WEEKS.get_last_partition_key()


@pytest.fixture(scope="module")
def week_metrics(materialised):
    path = defs.resources["warehouse_db"].path()
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("SELECT * EXCLUDE (scoring_week), scoring_week::VARCHAR AS scoring_week"
                            " FROM evaluation_metrics WHERE scoring_week = $w", {"w": WEEK}).df()


def test_the_oracle_file_is_the_simulators_and_no_other_sources(tmp_path):
    simulator = SourceResource(kind="simulator", simulator_preset="tiny", home=str(tmp_path))
    factors = oracle_factors_for(simulator)
    data_dir = simulator.open().data_dir
    assert (data_dir / ORACLE_FILE).is_file()
    assert factors is not None and len(factors.title_ids) == 400 and len(factors.user_ids) == 300
    # Another kind of source reading the very same files gets no oracle, file or not.
    assert oracle_factors_for(SourceResource(kind="canonical", data_dir=str(data_dir))) is None
    if SHARED_DATA.is_dir():
        assert oracle_factors_for(SourceResource(kind="movielens", data_dir=str(SHARED_DATA))) is None
        assert not list(SHARED_DATA.rglob(ORACLE_FILE))


def test_the_simulator_week_has_oracle_rows_for_the_cold_segments_on_the_models_users(week_metrics):
    oracle = week_metrics[week_metrics["variant"].str.startswith("oracle")]
    assert set(oracle["variant"]) == {"oracle_metadata", "oracle_all", "oracle_linear_read"}
    assert set(oracle["candidate_set"]) == {"cold"} and set(oracle["category"]) == {"movie", "tv"}
    assert oracle.groupby("variant").size().to_dict() == {"oracle_metadata": 8, "oracle_all": 8,
                                                          "oracle_linear_read": 8}
    users = week_metrics[week_metrics["metric"] == "precision"].pivot_table(
        index=["candidate_set", "category"], columns="variant", values="evaluated_users")
    cold = users.loc["cold"]
    assert all((cold[system] == cold["random"]).all()
               for system in ("oracle_metadata", "oracle_all", "oracle_linear_read"))
    assert oracle["checkpoint_sha256"].isna().all()


def test_table2_of_the_tiny_week_shows_the_oracle_rows(week_metrics, tiny_instance):
    markdown = table2_markdown(week_metrics)
    assert "| oracle (metadata) |" in markdown and "| oracle (all factors) |" in markdown
    assert "| oracle (true taste, features read linearly) |" in markdown
    assert "Share of oracle (metadata) P@6" in markdown
    event = tiny_instance.get_latest_materialization_event(AssetKey("evaluation_metrics"))
    metadata = event.asset_materialization.metadata
    assert "oracle (metadata)" in metadata["table_2_cold_start"].value
    assert metadata["oracle_rows"].value is True
