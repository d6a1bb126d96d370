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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the groups into test ids
def pytest_collection_modifyitems(items):
    """Under `pytest -n 2 --dist loadgroup` (`make test`) a module's tests stay in one worker, so its module
    fixtures are built once; the modules that need the session's materialised week form one group, so only one
    worker materialises it. The slow groups go first, so that neither worker is left with one of them at the end."""
    needing_the_week = {item.module.__name__ for item in items if "materialised" in getattr(item, "fixturenames", ())}

    def group(item) -> str:
        return "materialised" if item.module.__name__ in needing_the_week else item.module.__name__

    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1 if group(item) == "materialised" else 2)
