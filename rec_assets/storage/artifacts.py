"""Artifact directories written atomically, and the small references assets pass along the graph.

An artifact is a directory of ``.npy`` arrays and Parquet frames (loadable with no copy through
``np.load(mmap_mode="r")``) plus ``meta.json``. It is built beside its final place and swapped in with
renames, so a run killed mid-way leaves the previous version, never a half-written one. Its content hash
covers every file, and is what downstream assets record as the data version they read.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rec_assets.faults import crash_point
from rec_assets.storage.hashing import directory_sha256, require_content


@dataclass(frozen=True)
class ArtifactRef:
    """What an asset hands downstream: where its artifact lives and which content it holds."""

    path: str
    content_hash: str
    kind: str
    scoring_week: str
    details: dict = field(default_factory=dict)

    def open(self) -> "Artifact":
        """The artifact, once its directory is found to hold the content its materialisation recorded."""
        path = Path(self.path)
        require_content(path, self.content_hash, f"{self.kind} artifact",
                        f"re-materialise the {self.kind} asset for {self.scoring_week}")
        return Artifact(path)


class Artifact:
    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise FileNotFoundError(f"artifact {path} does not exist: materialise its asset first")
        self.path = path

    def array(self, name: str, mmap: bool = True) -> np.ndarray:
        return np.load(self.path / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

    def frame(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.path / f"{name}.parquet")

    def meta(self) -> dict:
        return json.loads((self.path / "meta.json").read_text())


def write_artifact(
    directory: Path,
    arrays: dict[str, np.ndarray] | None = None,
    frames: dict[str, pd.DataFrame] | None = None,
    meta: dict | None = None,
) -> str:
    """Write the artifact atomically and return its content hash."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{directory.name}.staging-{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        for name, array in (arrays or {}).items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        for name, frame in (frames or {}).items():
            frame.to_parquet(staging / f"{name}.parquet", index=False)
        (staging / "meta.json").write_text(json.dumps(meta or {}, indent=2, sort_keys=True, default=str))
        content_hash = directory_sha256(staging)
        retired = directory.with_name(f".{directory.name}.retired-{uuid.uuid4().hex}")
        if directory.exists():
            os.replace(directory, retired)
        crash_point(f"artifact:{directory.parent.name}")
        os.replace(staging, directory)
        shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return content_hash


# Where the references io manager pickles each asset partition's output, under the artifacts root.
REFS_FOLDER = "refs"


def stored_refs_folder(artifacts_root: Path, asset: Sequence[str]) -> Path:
    """The folder of ``asset``'s (its key path) stored outputs, one file per partition."""
    return Path(artifacts_root).joinpath(REFS_FOLDER, *asset)


def stored_ref_path(artifacts_root: Path, asset: Sequence[str], partition: str) -> Path:
    return stored_refs_folder(artifacts_root, asset) / partition


def load_stored_ref(artifacts_root: Path, asset: Sequence[str], partition: str):
    """The output (an ``ArtifactRef`` or ``CheckpointRef``) an asset handed on for ``partition``, read outside a run."""
    path = stored_ref_path(artifacts_root, asset, partition)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no stored output of {'/'.join(asset)} for {partition}; materialise it first")
    with open(path, "rb") as handle:
        return pickle.load(handle)
