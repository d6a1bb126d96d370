"""``SourceResource.open``: the kinds it accepts (the simulator and ``sources.SOURCE_KINDS``) and its errors; the file
sources are chosen by ``sources.canonical.open_source``, the one place that maps a kind to a source."""

from __future__ import annotations

import pytest

from rec_assets.defs.resources import SourceResource
from rec_assets.sources.canonical import SOURCE_KINDS, CanonicalSource
from rec_assets.sources.movielens import MovieLensSource
from rec_assets.sources.rejects import IngestionError
from rec_assets_tests.sources.test_canonical import write_layout


def test_file_kinds_open_through_open_source(tmp_path):
    catalog = write_layout(tmp_path / "catalog")
    assert isinstance(SourceResource(kind="canonical", data_dir=str(catalog)).open(), CanonicalSource)
    movielens = tmp_path / "ml"
    movielens.mkdir()
    (movielens / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    (movielens / "movies.csv").write_text("movieId,title,genres\n")
    assert isinstance(SourceResource(kind="movielens", data_dir=str(movielens)).open(), MovieLensSource)
    with pytest.raises(IngestionError, match="required file ratings.csv is missing"):
        SourceResource(kind="movielens", data_dir=str(catalog)).open()


def test_unknown_kind_and_missing_directory_are_clear_errors():
    assert set(SOURCE_KINDS) == {"canonical", "movielens"}
    with pytest.raises(ValueError, match="REC_DATA_SOURCE='netflix' is not one of simulator, canonical, movielens"):
        SourceResource(kind="netflix").open()
    with pytest.raises(ValueError, match="REC_DATA_SOURCE=canonical needs REC_DATA_DIR"):
        SourceResource(kind="canonical").open()
    with pytest.raises(ValueError, match="REC_BAD_ROWS='skip' is not one of quarantine, fail"):
        SourceResource(kind="canonical", bad_rows="skip").open()
