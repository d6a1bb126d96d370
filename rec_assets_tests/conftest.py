"""Test settings: the simulator's `tiny` preset in a throw-away REC_HOME, one torch thread.

Dagster reads the partitions' span when the definitions are imported, so the environment is set here,
before any test module imports them.
"""

import os
import tempfile
from pathlib import Path

import pytest

TEST_HOME = Path(tempfile.mkdtemp(prefix="rec_assets_tests_"))
os.environ["REC_HOME"] = str(TEST_HOME)
os.environ["REC_SIM_PRESET"] = "tiny"
os.environ["DAGSTER_HOME"] = str(TEST_HOME / "dagster_home")
for name in ("REC_DATA_SOURCE", "REC_DATA_DIR", "REC_DUCKDB", "REC_ARTIFACTS", "REC_FIRST_WEEK", "REC_TABLE_STORE",
             "REC_COVER_ENCODER", "REC_COVER_WEIGHTS", "REC_COVER_RESOLUTION", "REC_SYNOPSIS_ENCODER", "REC_WORD_VECTORS"):
    os.environ.pop(name, None)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"


@pytest.fixture(scope="session")
def rec_home() -> Path:
    return TEST_HOME


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_instance(rec_home):
    from dagster import DagsterInstance

    return DagsterInstance.ephemeral()


@pytest.fixture(scope="session")
def materialised(tiny_instance):
    """The latest tiny week materialised the way `make run` does it (ingest, the week, the summaries), once per
    session: the pipeline tests read its tables, the comparison tests its checkpoints and features."""
    from rec_assets.cli.stages import run_stages
    from rec_assets.definitions import build_definitions
    from rec_assets.defs.partitions import SCORING_WEEKS

    return [stage.execute(tiny_instance) for stage in run_stages(build_definitions(), [SCORING_WEEKS.get_last_partition_key()])]
