"""``storage/artifacts.py``: where the references io manager keeps each partition's output, read back outside a run
(the benchmark and the peer comparison) from the one layout the io manager writes."""

import pytest
from dagster import DagsterInstance, StaticPartitionsDefinition, asset, materialize

from rec_assets.defs.resources import ArtifactRefsIOManager, ArtifactsResource
from rec_assets.storage.artifacts import ArtifactRef, load_stored_ref, stored_ref_path

WEEKS = StaticPartitionsDefinition(["2026-10-26", "2026-11-02"])


@asset(partitions_def=WEEKS)
def title_categorical_features(context) -> ArtifactRef:
    week = context.partition_key
    return ArtifactRef(f"/artifacts/categorical/{week}", f"hash-{week}", "categorical", week)


def _materialise(root, week):
    result = materialize([title_categorical_features], partition_key=week, instance=DagsterInstance.ephemeral(),
                         resources={"io_manager": ArtifactRefsIOManager(artifacts=ArtifactsResource(root=str(root)))})
    assert result.success


def test_a_partitions_output_is_read_back_from_where_the_io_manager_wrote_it(tmp_path):
    _materialise(tmp_path, "2026-11-02")
    assert stored_ref_path(tmp_path, ["title_categorical_features"], "2026-11-02").is_file()
    ref = load_stored_ref(tmp_path, ["title_categorical_features"], "2026-11-02")
    assert ref == ArtifactRef("/artifacts/categorical/2026-11-02", "hash-2026-11-02", "categorical", "2026-11-02")


def test_a_partition_never_materialised_names_the_asset_the_partition_and_the_fix(tmp_path):
    _materialise(tmp_path, "2026-11-02")
    with pytest.raises(FileNotFoundError, match="title_categorical_features for 2026-10-26; materialise it first"):
        load_stored_ref(tmp_path, ["title_categorical_features"], "2026-10-26")
