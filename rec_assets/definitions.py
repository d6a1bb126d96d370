"""The code location: every asset, check, job, schedule and resource of rec-assets."""

from dagster import Definitions, FilesystemIOManager, load_asset_checks_from_modules

from rec_assets.defs import distributed, evaluation, features, jobs, raw, schedules, split, towers
from rec_assets.defs.resources import (
    ArtifactsResource,
    env_or_default,
    rec_home,
    source_resource,
    warehouse_resource,
    windows_resource,
)


def build_definitions() -> Definitions:
    return Definitions(
        assets=[
            raw.raw_titles, raw.raw_users, raw.raw_watch_events, raw.raw_title_tags,
            *split.split_assets,
            *features.feature_assets,
            *towers.tower_assets,
            *evaluation.evaluation_assets,
            *distributed.distributed_tower_assets,
        ],
        asset_checks=load_asset_checks_from_modules([raw]),
        jobs=[jobs.ingest_history_job, jobs.scoring_week_job, jobs.summaries_job],
        schedules=[schedules.weekly_refresh_schedule],
        resources={
            "source": source_resource(),
            "windows": windows_resource(),
            "warehouse_db": warehouse_resource(),
            "artifacts": ArtifactsResource(root=env_or_default("REC_ARTIFACTS", "")),
            "features": features.features_resource(),
            "training": towers.TrainingResource(
                epochs=env_or_default("REC_EPOCHS", 6),
                seed=env_or_default("REC_SEED", 0),
                loss=env_or_default("REC_LOSS", "sampled_softmax"),
                device=env_or_default("REC_DEVICE", "cpu"),
            ),
            "evaluation": evaluation.EvaluationResource(top_k=env_or_default("REC_TOP_K", 6)),
            **distributed.distributed_resources(),
            # Small references (artifact paths and hashes) passed between assets, one file per partition.
            "io_manager": FilesystemIOManager(base_dir=str(rec_home() / "artifacts" / "refs")),
        },
    )


defs = build_definitions()
