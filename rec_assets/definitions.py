"""The code location: every definition under ``rec_assets/defs/``, autoloaded the dg way.

``dg dev``, ``dagster dev -w workspace.yaml`` and the deployments load ``defs``; code outside Dagster's tools
(the CLI, the bench, tests) calls ``build_definitions()``, which loads them once per process.
"""

from functools import cache
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@cache
def build_definitions() -> dg.Definitions:
    return defs()
