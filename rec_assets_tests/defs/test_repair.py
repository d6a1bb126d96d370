"""Corruption at rest, end to end on the tiny week `make run` materialised: the asset that reads a damaged
checkpoint or a deleted feature artifact fails naming the file and the asset to materialise again, and
materialising that asset repairs it (same seed, same bytes), after which the reader succeeds.

Its own module: the pipeline tests hold a read-only connection to the warehouse, and a writer in the same
process may not open the file with another configuration.
"""

import shutil
from pathlib import Path

from dagster import AssetKey

from rec_assets.definitions import build_definitions
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.storage.hashing import file_sha256

defs = build_definitions()

WEEK = SCORING_WEEKS.get_last_partition_key()


def _materialise(instance, *names: str):
    job = defs.resolve_job_def("materialize_scoring_week")
    return job.execute_in_process(instance=instance, partition_key=WEEK,
                                  asset_selection=[AssetKey(n) for n in names], raise_on_error=False)


def _failure(result) -> str:
    """Every failed step's error, with the errors that caused it (Dagster wraps the asset's own)."""
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


def test_a_corrupted_checkpoint_fails_the_evaluation_naming_it_and_rematerialising_the_tower_repairs_it(
        materialised, tiny_instance):
    key = AssetKey("tower_checkpoint_categorical")
    metadata = tiny_instance.fetch_materializations(key, limit=1).records[0].asset_materialization.metadata
    path, sha256 = metadata["artifact_path"].value, metadata["sha256"].value
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped at rest
    Path(path).write_bytes(bytes(data))
    failed = _materialise(tiny_instance, "evaluation_metrics")
    assert not failed.success
    assert f"checkpoint {path} holds content" in _failure(failed)
    assert f"re-materialise tower_checkpoint_categorical for {WEEK}" in _failure(failed)
    assert _materialise(tiny_instance, "tower_checkpoint_categorical").success
    assert file_sha256(path) == sha256  # same seed, same bytes
    assert _materialise(tiny_instance, "evaluation_metrics").success


def test_a_deleted_feature_artifact_fails_its_reader_naming_it_and_rematerialising_the_feature_repairs_it(
        materialised, tiny_instance):
    key = AssetKey("title_cover_art_embeddings")
    before = tiny_instance.fetch_materializations(key, limit=1).records[0].asset_materialization.metadata
    directory = Path(before["artifact_path"].value)
    shutil.rmtree(directory)
    failed = _materialise(tiny_instance, "tower_checkpoint_cover_art")
    assert not failed.success
    assert str(directory) in _failure(failed)
    assert _materialise(tiny_instance, "title_cover_art_embeddings").success
    after = tiny_instance.fetch_materializations(key, limit=1).records[0].asset_materialization.metadata
    assert after["content_hash"].value == before["content_hash"].value and directory.is_dir()
    assert _materialise(tiny_instance, "tower_checkpoint_cover_art").success
