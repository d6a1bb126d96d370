"""Tower checkpoints: one asset per model variant per scoring week, trained on X -> Y of that week only.

The variant list lives in ``rec_assets.model.variants.VARIANTS``; this factory makes one asset of each.
The output is a ``CheckpointRef`` (path, sha256, run id) stored per partition, which the evaluation of
the same week takes as its input: it reads its own upstream checkpoint, never "the newest file".
"""


import base64
import io
import time
from dataclasses import asdict

import numpy as np
import torch
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    MetadataValue,
    asset,
)

from rec_assets.asset_io import CheckpointRef, tower_asset_name
from rec_assets.defs.resources import ArtifactsResource, TrainingResource, WarehouseResource, WindowsResource
from rec_assets.defs.week_inputs import TOWER_INPUTS, artifact_output, feature_hashes, load_feature_week
from rec_assets.model.checkpoint import embed_items, load_checkpoint, save_checkpoint
from rec_assets.model.train import train_variant
from rec_assets.model.variants import VARIANTS
from rec_assets.storage.artifacts import ArtifactRef

TOWERS_GROUP = "towers"


def loss_curve_markdown(train_loss: list[float], val_loss: list[float], title: str) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3), dpi=100)
    axes = figure.add_subplot()
    epochs = list(range(1, len(train_loss) + 1))
    axes.plot(epochs, train_loss, marker="o", label="train")
    axes.plot(list(range(0, len(val_loss))), val_loss, marker="s", label="validation")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss (the configured loss)")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return f"![loss curve](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def checkpoint_checks(variant: str, result, path, items) -> list[AssetCheckResult]:
    """The loss decreased, no weight is NaN, and the saved checkpoint reloads and scores identically."""
    reloaded = load_checkpoint(path)
    same_scores = bool(torch.equal(
        torch.from_numpy(embed_items(reloaded.model, items)), torch.from_numpy(embed_items(result.model, items))
    ))
    nan_tensors = [name for name, t in result.model.state_dict().items() if t.is_floating_point() and t.isnan().any()]
    # Every title without the variant's inputs (a source with no posters, for the cover-art variant): all titles
    # embed alike, so the softmax cannot move off uniform. A warning, not a stop: the other variants are fine.
    blind = not np.diff(embed_items(result.model, items), axis=0).any()
    return [
        AssetCheckResult(
            check_name=f"tower_{variant}_loss_decreased",
            passed=result.best_val_loss < result.initial_val_loss,
            severity=AssetCheckSeverity.WARN if blind else AssetCheckSeverity.ERROR,
            description=f"validation loss {result.initial_val_loss:.4f} before training, best {result.best_val_loss:.4f}"
            + ("; every title embeds alike: no title has this variant's metadata" if blind else ""),
        ),
        AssetCheckResult(
            check_name=f"tower_{variant}_weights_finite",
            passed=not nan_tensors,
            description="no NaN weight" if not nan_tensors else f"{len(nan_tensors)} tensors hold NaN: {nan_tensors[:5]}",
        ),
        AssetCheckResult(
            check_name=f"tower_{variant}_reloads_identically",
            passed=same_scores,
            description="the reloaded checkpoint embeds every title bit-identically" if same_scores
            else "the reloaded checkpoint embeds titles differently",
        ),
    ]


def build_tower_asset(variant: str) -> AssetsDefinition:
    name = tower_asset_name(variant)
    check_names = [f"tower_{variant}_loss_decreased", f"tower_{variant}_weights_finite",
                   f"tower_{variant}_reloads_identically"]

    @asset(
        name=name,
        group_name=TOWERS_GROUP,
        kinds={"pytorch"},
        **TOWER_INPUTS,
        code_version=f"tower-v3-{variant}",
        check_specs=[AssetCheckSpec(n, asset=name, blocking=True) for n in check_names],
        description=f"Two-tower model '{variant}': {VARIANTS[variant].description}. Trained on X -> Y of the week.",
    )
    def _tower(
        context: AssetExecutionContext,
        categorical: ArtifactRef,
        synopsis: ArtifactRef,
        cover_art: ArtifactRef,
        warehouse_db: WarehouseResource,
        windows: WindowsResource,
        artifacts: ArtifactsResource,
        training: TrainingResource,
    ):
        week = context.partition_key
        data = load_feature_week(context, warehouse_db, windows, categorical, synopsis, cover_art, "train",
                                 threads=training.threads)
        context.log.info(f"{variant}: {len(data.labels)} positives of {data.users.n_users} users, "
                         f"{data.items.n_titles} titles ({int(data.items.id_known.sum())} with an ID)")
        last_log = [0.0]

        def progress(report: dict) -> None:
            now = time.monotonic()
            if report.get("event") == "epoch" or now - last_log[0] >= 5:
                last_log[0] = now
                context.log.info(f"{variant}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                            for k, v in report.items()))

        config = training.train_config()
        result = train_variant(variant, data.items, data.users, data.labels, config, progress,
                               embedding_dim=training.embedding_dim, history_len=training.history_len)
        path = artifacts.path("checkpoints", variant, f"{week}.pt")
        hashes = feature_hashes(categorical, synopsis, cover_art)
        sha256 = save_checkpoint(path, result.model, data.items.title_ids, train_config=asdict(config),
                                 extra={"variant": variant, "scoring_week": week, "feature_hashes": hashes})
        ref = CheckpointRef(variant, week, str(path), sha256, context.run.run_id)
        yield artifact_output(ref, path, sha256, hash_name="sha256", metadata={
            "training_examples": int(result.examples_seen),
            "positives": len(data.labels),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "final_train_loss": float(result.train_loss[-1]) if result.train_loss else float("nan"),
            "best_val_loss": float(result.best_val_loss),
            "wall_seconds": round(result.wall_seconds, 2),
            "examples_per_second": round(result.examples_per_second, 1),
            "compute_share": round(result.compute_share, 3),
            "parameters": int(result.parameter_count),
            "input_data_versions": MetadataValue.json(hashes),
            "loss_curve": MetadataValue.md(loss_curve_markdown(result.train_loss, result.val_loss, variant)),
        })
        yield from checkpoint_checks(variant, result, path, data.items)

    return _tower


tower_assets = [build_tower_asset(variant) for variant in VARIANTS]
