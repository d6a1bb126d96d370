"""``defs/week_inputs.py``: the feature inputs, hashes and artifact ``Output`` the tower, distributed-tower and
evaluation assets share; autoloaded with the defs folder, it defines no Dagster definition itself."""

from dagster import (
    AssetChecksDefinition,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    ConfigurableResource,
    DataVersion,
    Definitions,
    JobDefinition,
    Output,
    ScheduleDefinition,
    SensorDefinition,
    load_assets_from_modules,
)

from rec_assets.asset_io import FEATURE_ASSETS
from rec_assets.defs import week_inputs
from rec_assets.defs.evaluation import SCORES_A_WEEK
from rec_assets.defs.week_inputs import FEATURE_INPUTS, artifact_output, feature_hashes
from rec_assets.storage.artifacts import ArtifactRef, stored_refs_folder


def _ref(kind: str) -> ArtifactRef:
    return ArtifactRef(f"/artifacts/{kind}", f"{kind}-hash", kind, "2025-03-03")


def test_feature_inputs_name_the_three_feature_assets():
    assert {kind: ins.key for kind, ins in FEATURE_INPUTS.items()} == {
        kind: AssetKey(name) for kind, name in FEATURE_ASSETS.items()}
    assert all(isinstance(ins, AssetIn) for ins in FEATURE_INPUTS.values())
    assert FEATURE_INPUTS.items() <= SCORES_A_WEEK["ins"].items()


def test_feature_hashes_by_kind():
    assert feature_hashes(_ref("categorical"), _ref("synopsis"), _ref("cover_art")) == {
        "categorical": "categorical-hash", "synopsis": "synopsis-hash", "cover_art": "cover_art-hash"}


def test_artifact_output_versions_by_content_and_names_path_and_hash_first():
    content_hash = "0123456789abcdef" * 4
    out = artifact_output("ref", "/artifacts/x", content_hash, {"titles": 3})
    assert isinstance(out, Output) and out.value == "ref"
    assert out.data_version == DataVersion(content_hash[:24])
    assert list(out.metadata) == ["artifact_path", "content_hash", "titles"]
    assert out.metadata["artifact_path"].value == "/artifacts/x" and out.metadata["content_hash"].value == content_hash
    checkpoint = artifact_output("ref", "/c.pt", content_hash, {}, hash_name="sha256")
    assert list(checkpoint.metadata) == ["artifact_path", "sha256"]


def test_the_module_defines_no_dagster_definition():
    kinds = (AssetsDefinition, AssetSpec, AssetChecksDefinition, JobDefinition, ScheduleDefinition, SensorDefinition,
             ConfigurableResource, Definitions)
    assert [name for name, value in vars(week_inputs).items() if isinstance(value, kinds)] == []
    assert load_assets_from_modules([week_inputs]) == []


def test_references_between_assets_are_pickled_under_the_runs_own_artifacts_root(tmp_path):
    from dagster import DagsterInstance, asset, materialize

    from rec_assets.defs.resources import ArtifactRefsIOManager, ArtifactsResource

    @asset
    def upstream() -> dict:
        return {"path": "x"}

    @asset
    def downstream(upstream: dict) -> dict:
        return upstream

    for root in (tmp_path / "one", tmp_path / "two"):
        io_manager = ArtifactRefsIOManager(artifacts=ArtifactsResource(root=str(root)))
        result = materialize([upstream, downstream], resources={"io_manager": io_manager},
                             instance=DagsterInstance.ephemeral())
        assert result.success and result.output_for_node("downstream") == {"path": "x"}
        assert sorted(p.name for p in stored_refs_folder(root, []).iterdir()) == ["downstream", "upstream"]
