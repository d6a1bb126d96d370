"""What the tower, distributed-tower and evaluation assets share: the three feature inputs of a scoring week, the
week's model data read through them, and the ``Output`` of a content-addressed artifact (features, checkpoints).

Plain constants and functions only: ``load_from_defs_folder`` imports every module of this folder, and this one
defines no asset, check, job, schedule, sensor or resource.
"""

from pathlib import Path
from typing import Any

import torch
from dagster import AssetDep, AssetExecutionContext, AssetIn, DataVersion, Output

from rec_assets.asset_io import FEATURE_ASSETS, load_week_phase
from rec_assets.defs.partitions import EVENTS_OF_SCORING_WEEK, SCORING_WEEKS
from rec_assets.model.inputs import WeekData
from rec_assets.storage.artifacts import ArtifactRef

# Feature kind -> the input of that feature asset, of the same scoring week.
FEATURE_INPUTS = {kind: AssetIn(name) for kind, name in FEATURE_ASSETS.items()}
# What every tower of a scoring week reads, in process or under torchrun: the feature artifacts, and the tables
# its examples come from (the events of every week of its history windows).
TOWER_INPUTS: dict[str, Any] = {
    "partitions_def": SCORING_WEEKS,
    "ins": FEATURE_INPUTS,
    "deps": ["week_titles", "raw_users", AssetDep("raw_watch_events", partition_mapping=EVENTS_OF_SCORING_WEEK)],
}


def feature_hashes(categorical: ArtifactRef, synopsis: ArtifactRef, cover_art: ArtifactRef) -> dict[str, str]:
    """Feature kind -> the content hash of the artifact a model was trained or scored on."""
    return {"categorical": categorical.content_hash, "synopsis": synopsis.content_hash,
            "cover_art": cover_art.content_hash}


def load_feature_week(context: AssetExecutionContext, warehouse_db: Any, windows: Any, categorical: ArtifactRef,
                      synopsis: ArtifactRef, cover_art: ArtifactRef, phase: str,
                      threads: int | None = None) -> WeekData:
    """The partition's model inputs for ``phase`` ("train" or "score") with its three feature artifacts;
    ``threads``, when given, is set as torch's CPU thread count first."""
    if threads is not None:
        torch.set_num_threads(threads)
    return load_week_phase(warehouse_db, windows, context.partition_time_window, (categorical, synopsis, cover_art),
                           phase)


def artifact_output(value: Any, path: Path | str, content_hash: str, metadata: dict,
                    hash_name: str = "content_hash") -> Output:
    """The ``Output`` of an artifact written at ``path``: its data version is the content hash (24 characters),
    and its metadata names the path (``artifact_path``: the IO manager writes its own ``path``, the pickled
    reference's, over a key of that name) and the hash (under ``hash_name``) before ``metadata``."""
    return Output(value, data_version=DataVersion(content_hash[:24]),
                  metadata={"artifact_path": str(path), hash_name: content_hash, **metadata})
