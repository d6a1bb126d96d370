"""The Celery code location: rec-assets' definitions, every step of a run a Celery task on a worker.

The first step past one machine (README, "Scaling out"): a Redis broker, any number of
``dagster-celery worker start`` processes on any hosts that share ``REC_HOME`` and the Parquet table store
(``REC_TABLE_STORE``, so no worker waits for the DuckDB file's lock), and this code location. The webserver,
daemon and run workers load it with ``dagster dev -f deploy/celery/definitions.py`` (or a gRPC server);
``deploy/celery/backfill.py`` starts all of it on one machine and runs a backfill. Everything else (assets,
checks, jobs, schedules, resources) is ``rec_assets.definitions`` unchanged; dagster-celery is an optional
extra (``pip install -e '.[celery]'``).

Broker and result backend come from ``REC_CELERY_BROKER`` and ``REC_CELERY_BACKEND`` (default: Redis on
127.0.0.1:6379, databases 0 and 1); the workers read the same variables through ``worker.yaml``.
"""

import os

from dagster import AssetSelection, Definitions, define_asset_job, definitions
from dagster_celery import celery_executor

# The module, not its `defs`: Dagster's loader allows one @definitions function in this module's scope.
from rec_assets import definitions as project

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/1"


def celery_settings() -> dict[str, str]:
    """Broker and result backend URLs, from the environment (read when the code location loads)."""
    return {
        "broker": os.environ.get("REC_CELERY_BROKER") or DEFAULT_BROKER,
        "backend": os.environ.get("REC_CELERY_BACKEND") or DEFAULT_BACKEND,
    }


CELERY_EXECUTOR = celery_executor.configured(celery_settings(), name="celery")

# A shorter week for checks (the Celery test): the split and features groups and one tower (attention with
# IDs, the paper's full model) with their checks; `materialize_scoring_week` is the whole week.
CORE_WEEK_JOB = "scoring_week_core"
CORE_WEEK_SELECTION = AssetSelection.groups("split", "features") | AssetSelection.assets("tower_checkpoint_attention_id")
core_week_job = define_asset_job(
    CORE_WEEK_JOB, selection=CORE_WEEK_SELECTION,
    description="Split, features and the attention_id tower of one scoring week (a shorter week for checks).",
)


@definitions
def defs() -> Definitions:
    return Definitions.merge(project.defs(), Definitions(jobs=[core_week_job], executor=CELERY_EXECUTOR))
