"""Corruption at rest: a truncated or bit-flipped checkpoint, a deleted or changed feature artifact, a DuckDB file
from another project or not a DuckDB file at all. What reads it fails with a message naming the file and what is
wrong (and what to re-materialise); writing the upstream again repairs it."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from rec_assets.asset_io import CheckpointRef, verified_checkpoint
from rec_assets.defs.resources import WarehouseResource
from rec_assets.storage.artifacts import ArtifactRef, write_artifact
from rec_assets.storage.hashing import file_sha256

WEEK = "2026-11-02"


def checkpoint(tmp_path, payload: bytes = b"checkpoint bytes " * 1000) -> CheckpointRef:
    path = tmp_path / "attention_id" / f"{WEEK}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return CheckpointRef("attention_id", WEEK, str(path), file_sha256(path), "run-1")


def feature_artifact(tmp_path) -> ArtifactRef:
    directory = tmp_path / "features" / "cover_art" / WEEK
    digest = write_artifact(directory, arrays={"vectors": np.arange(12, dtype=np.float32).reshape(3, 4)},
                            meta={"encoder": "test"})
    return ArtifactRef(str(directory), digest, "cover_art", WEEK)


def test_a_truncated_checkpoint_is_refused_naming_the_file_and_the_asset_to_rematerialise(tmp_path):
    ref = checkpoint(tmp_path)
    data = open(ref.path, "rb").read()
    open(ref.path, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"checkpoint {ref.path} holds content \w+, not {ref.sha256[:12]} as "
                                         rf"materialised: truncated, changed or partly deleted; re-materialise "
                                         rf"tower_checkpoint_attention_id for {WEEK}"):
        verified_checkpoint(ref)


def test_a_bit_flipped_checkpoint_is_refused_and_rewriting_it_repairs(tmp_path):
    ref = checkpoint(tmp_path)
    data = bytearray(open(ref.path, "rb").read())
    data[100] ^= 0x01
    open(ref.path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="truncated, changed or partly deleted"):
        verified_checkpoint(ref)
    repaired = checkpoint(tmp_path)  # the tower asset materialised again: a new file and a new ref
    assert verified_checkpoint(repaired) == repaired.path


def test_a_missing_checkpoint_names_its_file(tmp_path):
    ref = checkpoint(tmp_path)
    (tmp_path / "attention_id" / f"{WEEK}.pt").unlink()
    with pytest.raises(FileNotFoundError, match=rf"checkpoint {ref.path} is missing: re-materialise"):
        verified_checkpoint(ref)


def test_a_deleted_feature_artifact_names_its_directory_and_rewriting_repairs(tmp_path):
    ref = feature_artifact(tmp_path)
    (tmp_path / "features" / "cover_art" / WEEK / "vectors.npy").unlink()
    with pytest.raises(ValueError, match=rf"cover_art artifact {ref.path} holds content \w+, not "
                                         rf"{ref.content_hash[:12]} as materialised: truncated, changed or partly "
                                         rf"deleted; re-materialise the cover_art asset for {WEEK}"):
        ref.open()
    repaired = feature_artifact(tmp_path)
    assert repaired.content_hash == ref.content_hash  # same inputs, same content
    assert repaired.open().array("vectors").shape == (3, 4)


def test_a_whole_missing_feature_artifact_says_which_asset_to_materialise(tmp_path):
    ref = feature_artifact(tmp_path)
    for file in (tmp_path / "features" / "cover_art" / WEEK).iterdir():
        file.unlink()
    (tmp_path / "features" / "cover_art" / WEEK).rmdir()
    with pytest.raises(FileNotFoundError, match=rf"cover_art artifact {ref.path} is missing: re-materialise the "
                                                rf"cover_art asset for {WEEK}"):
        ref.open()


def test_a_duckdb_file_of_another_project_is_refused_naming_it_and_its_tables(tmp_path):
    foreign = tmp_path / "shop.duckdb"
    with duckdb.connect(str(foreign)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(ValueError, match=rf"{foreign} is not a rec-assets warehouse: it holds only other tables "
                                         r"\(customers, orders\); set REC_DUCKDB"):
        with WarehouseResource(database=str(foreign)).connect():
            pass
    with duckdb.connect(str(foreign), read_only=True) as conn:  # and it is left as it was
        assert conn.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0] == 2


def test_a_file_that_is_no_duckdb_database_is_refused_naming_it(tmp_path):
    garbage = tmp_path / "warehouse.duckdb"
    garbage.write_bytes(b"not a database " * 200)
    with pytest.raises(ValueError, match=rf"{garbage} cannot be opened as a DuckDB warehouse"):
        with WarehouseResource(database=str(garbage)).connect(read_only=True):
            pass


def test_an_empty_or_own_warehouse_opens(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with WarehouseResource(database=str(path)).connect() as conn:
        conn.execute("CREATE TABLE evaluation_metrics (variant VARCHAR)")
    with WarehouseResource(database=str(path)).connect(read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM evaluation_metrics").fetchone()[0] == 0
