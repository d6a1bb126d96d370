"""Distributed training through Dagster Pipes: torchrun runs ``rec_assets.model.distributed`` (DDP), the
checkpoint comes back as the asset's materialisation.

The asset writes the week's training problem as an artifact (shared storage on a cluster), launches
``torchrun`` with a Pipes client and yields the worker's reported materialisation with the ``CheckpointRef``
evaluation reads. Locally the client is ``PipesSubprocessClient``; on Kubernetes bind ``pipes_client`` to
``dagster_k8s.PipesK8sClient`` and set ``launcher`` to ``k8s`` (deploy/README.md). Opt-in: its group
``distributed_training`` is kept out of the default jobs and the schedule.
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    DataVersion,
    MetadataValue,
    Output,
    PipesSubprocessClient,
    asset,
)
from pydantic import Field

from rec_assets.asset_io import DISTRIBUTED_GROUP, CheckpointRef, tower_asset_name
from rec_assets.defs.resources import ArtifactsResource, TrainingResource, WarehouseResource, WindowsResource, setting
from rec_assets.defs.week_inputs import TOWER_INPUTS, feature_hashes, load_feature_week
from rec_assets.model.data import Interactions, ItemFeatures, UserData
from rec_assets.model.distributed import problem_arrays
from rec_assets.model.train import TrainConfig
from rec_assets.storage.artifacts import ArtifactRef, write_artifact

TRAINING_POOL = "torchrun_training"
WORKER_MODULE = "rec_assets.model.distributed"
LAUNCHERS = ("subprocess", "k8s")


class DistributedTrainingResource(ConfigurableResource):
    """How torchrun is started: processes per node (one per GPU, or per CPU socket), where, with what."""

    processes: int = setting("REC_TRAIN_PROCESSES", 2, "torchrun --nproc_per_node.")
    threads_per_process: int = Field(default=1, description="torch CPU threads of each process.")
    launcher: str = Field(default="subprocess", description="subprocess (PipesSubprocessClient) or k8s "
                                                            "(PipesK8sClient: one pod running torchrun).")
    image: str = Field(default="", description="k8s: the image (default: the code location's).")
    namespace: str = Field(default="rec-assets", description="k8s: the namespace of the training pod.")
    gpus: int = Field(default=0, description="k8s: nvidia.com/gpu limit of the training pod (0: CPU, gloo).")

    def torchrun_args(self, problem: str, out: str, variant: str, config: TrainConfig, model: dict,
                      extra: dict) -> list[str]:
        return [
            "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", str(self.processes),
            "-m", WORKER_MODULE, "--problem", problem, "--out", out, "--variant", variant,
            "--config", json.dumps(config.to_dict()), "--model", json.dumps(model), "--extra", json.dumps(extra),
            "--threads", str(self.threads_per_process),
        ]


def write_problem(directory: Path, items: ItemFeatures, users: UserData, positives: Interactions) -> str:
    """The training problem as an artifact (atomic, content-hashed) every worker reads."""
    arrays, meta = problem_arrays(items, users, positives)
    return write_artifact(directory, arrays=arrays, meta=meta)


def run_torchrun(context: AssetExecutionContext, pipes_client, distributed: DistributedTrainingResource,
                 variant: str, items: ItemFeatures, users: UserData, positives: Interactions, config: TrainConfig,
                 problem_dir: Path, checkpoint_path: Path, model: dict | None = None, extra: dict | None = None):
    """Write the problem, run torchrun through ``pipes_client``, return the worker's MaterializeResult (its
    metadata names the checkpoint's path and sha256)."""
    if distributed.launcher not in LAUNCHERS:
        raise ValueError(f"launcher {distributed.launcher!r} is not one of {', '.join(LAUNCHERS)}")
    problem_hash = write_problem(problem_dir, items, users, positives)
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    args = distributed.torchrun_args(str(problem_dir), str(checkpoint_path), variant, config, model or {},
                                     {**(extra or {}), "problem_sha256": problem_hash})
    context.log.info(f"{variant}: torchrun with {distributed.processes} processes ({distributed.launcher})")
    if distributed.launcher == "subprocess":
        invocation = pipes_client.run(command=[sys.executable, *args], context=context)
    else:  # dagster_k8s.PipesK8sClient: the same command in one pod of the code location's image
        resources = {"limits": {"nvidia.com/gpu": distributed.gpus}} if distributed.gpus else {}
        invocation = pipes_client.run(
            context=context, namespace=distributed.namespace, image=distributed.image or None,
            command=["python", *args],
            base_pod_spec={"containers": [{"name": "torchrun", "resources": resources}]} if resources else None,
        )
    return invocation.get_materialize_result(), problem_hash


def build_distributed_tower_asset(variant: str = "attention_id"):
    """``tower_checkpoint_<variant>_ddp``: the tower of ``variant`` trained by torchrun (DDP) through Pipes."""
    name = f"{tower_asset_name(variant)}_ddp"

    @asset(
        name=name,
        group_name=DISTRIBUTED_GROUP,
        kinds={"pytorch"},
        pool=TRAINING_POOL,
        **TOWER_INPUTS,
        code_version=f"tower-ddp-v2-{variant}",
        description=f"Two-tower model '{variant}' trained with DistributedDataParallel under torchrun, launched "
                    "through Dagster Pipes; the same training as the in-process tower, split across processes.",
    )
    def _distributed_tower(
        context: AssetExecutionContext,
        categorical: ArtifactRef,
        synopsis: ArtifactRef,
        cover_art: ArtifactRef,
        warehouse_db: WarehouseResource,
        windows: WindowsResource,
        artifacts: ArtifactsResource,
        training: TrainingResource,
        distributed_training: DistributedTrainingResource,
        pipes_client: PipesSubprocessClient,
    ):
        week = context.partition_key
        data = load_feature_week(context, warehouse_db, windows, categorical, synopsis, cover_art, "train")
        config = training.train_config()
        path = artifacts.path("checkpoints", f"{variant}_ddp", f"{week}.pt")
        reported, problem_hash = run_torchrun(
            context, pipes_client, distributed_training, variant, data.items, data.users, data.labels, config,
            problem_dir=artifacts.path("training_problems", week), checkpoint_path=path,
            model={"embedding_dim": training.embedding_dim, "history_len": training.history_len},
            extra={"variant": variant, "scoring_week": week,
                   "feature_hashes": feature_hashes(categorical, synopsis, cover_art)},
        )
        metadata = dict(reported.metadata or {})
        sha256 = metadata["sha256"].value if hasattr(metadata["sha256"], "value") else metadata["sha256"]
        yield Output(
            CheckpointRef(variant, week, str(path), sha256, context.run.run_id),
            data_version=DataVersion(sha256[:24]),
            metadata={**metadata, "training_problem_sha256": problem_hash, "train_config": MetadataValue.json(
                asdict(config))},
        )

    return _distributed_tower


distributed_tower_assets = [build_distributed_tower_asset("attention_id")]
