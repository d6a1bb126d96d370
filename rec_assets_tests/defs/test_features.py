"""The feature assets on the hand-made week: tags reach each phase only from its own history; the embedding assets
record their encoder (name, weights sha256, input size, throughput) in their metadata and artifact.

Windows of W = 2025-03-03 (see ``rec_assets_tests/split/test_split_models.py``):
    X  = [01-27, 02-24)   Y  = [02-24, 03-03)   X' = [02-03, 03-03)   Y' = [03-03, 03-10)
Training rows (and the vocabulary) see the tags applied before 02-24, scoring rows those applied before 03-03.
"""

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from rec_assets.storage.tables import replace_events, replace_title_tags, replace_titles
from rec_assets.defs.features import (
    FeaturesResource,
    features_resource,
    load_popularity,
    load_week_catalogue,
    load_week_tags,
    title_categorical_features,
    title_cover_art_embeddings,
    title_synopsis_embeddings,
)
from rec_assets.defs.resources import ArtifactsResource, WarehouseResource
from rec_assets.features.categorical import encode, fit_vocabulary
from rec_assets.features.encoders import encoders_label, week_encoders_label
from rec_assets_tests.features.test_cover_art import write_jpeg
from rec_assets.sources.frames import tags_frame
from rec_assets_tests.split.test_split_models import materialize_week
from rec_assets_tests.storage.test_parquet_store import events_frame, titles_frame

WEEK = "2025-03-03"

TAGS = [  # title, tag, applied at         when                                 in the rows of
    (1, "noir", "2025-02-01 10:00"),    # X                                    train, score
    (1, "noir", "2025-02-20 10:00"),    # X, a second application              train, score
    (2, "noir", "2025-02-10 10:00"),    # X                                    train, score
    (2, "remake", "2025-01-30 10:00"),  # X                                    train, score
    (2, "sequel", "2025-02-05 10:00"),  # X                                    train, score
    (1, "remake", "2025-02-25 10:00"),  # after X, before the end of X'        score
    (4, "remake", "2025-02-24 00:00"),  # the end of X itself (half-open)      score
    (1, "sequel", "2025-03-04 10:00"),  # after X' (in Y')                     neither
    (3, "late", "2025-02-26 10:00"),    # first applied after X: no column    neither
    (3, "fresh", "2025-03-05 10:00"),   # first applied after X'               neither
    (5, "noir", "2025-02-01 10:00"),    # title 5 is not available in the week
]


def build_warehouse(path, tags: list[tuple], titles: pd.DataFrame | None = None) -> WarehouseResource:
    """The hand-made titles and events, the week's split, and ``tags`` as the tag snapshot, in a DuckDB file."""
    with duckdb.connect(str(path)) as conn:
        replace_titles(conn, titles_frame() if titles is None else titles)
        replace_events(conn, events_frame(), None, None)
        materialize_week(conn)
        ids, names, stamps = zip(*tags) if tags else ((), (), ())
        replace_title_tags(conn, tags_frame(ids, names, [datetime.fromisoformat(s) for s in stamps]))
    return WarehouseResource(database=str(path))


def run_features(tmp_path, tags: list[tuple], **settings):
    warehouse_db = build_warehouse(tmp_path / "w.duckdb", tags)
    result = materialize(
        [title_categorical_features],
        resources={"warehouse_db": warehouse_db, "artifacts": ArtifactsResource(root=str(tmp_path / "artifacts")),
                   "features": FeaturesResource(**settings)},
        partition_key=WEEK,
    )
    assert result.success
    metadata = result.asset_materializations_for_node("title_categorical_features")[0].metadata
    return warehouse_db, result.output_for_node("title_categorical_features").open(), metadata


def tags_by_title(artifact, phase: str) -> dict[int, set[str]]:
    vocabulary = artifact.frame("vocabulary")
    tag_of_column = dict(zip(vocabulary.loc[vocabulary["field"] == "tag", "column"],
                             vocabulary.loc[vocabulary["field"] == "tag", "value"]))
    offsets, indices = artifact.array(f"{phase}_offsets"), artifact.array(f"{phase}_indices")
    return {int(t): {tag_of_column[c] for c in indices[offsets[r]:offsets[r + 1]].tolist() if c in tag_of_column}
            for r, t in enumerate(artifact.array("title_ids"))}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    return run_features(tmp_path_factory.mktemp("tagged"), TAGS)


def test_the_vocabulary_holds_only_tags_applied_before_the_end_of_x(tagged):
    _, artifact, metadata = tagged
    vocabulary = artifact.frame("vocabulary")
    assert vocabulary.loc[vocabulary["field"] == "tag", "value"].tolist() == ["noir", "remake", "sequel"]
    assert metadata["tag_vocabulary_size"].value == 3


def test_training_rows_carry_the_tags_applied_before_the_end_of_x(tagged):
    _, artifact, _ = tagged
    assert tags_by_title(artifact, "train") == {1: {"noir"}, 2: {"noir", "remake", "sequel"}, 3: set(), 4: set(),
                                                6: set()}


def test_a_tag_applied_after_the_end_of_x_reaches_the_scoring_rows_only(tagged):
    _, artifact, _ = tagged
    train, score = tags_by_title(artifact, "train"), tags_by_title(artifact, "score")
    assert "remake" not in train[1] and "remake" in score[1]
    assert "remake" not in train[4] and "remake" in score[4]  # applied at the very end of X: not before it


def test_a_tag_applied_after_the_end_of_x_prime_reaches_neither_phase(tagged):
    _, artifact, _ = tagged
    train, score = tags_by_title(artifact, "train"), tags_by_title(artifact, "score")
    assert "sequel" not in train[1] and "sequel" not in score[1]  # in the vocabulary, but applied to 1 in Y'
    assert score == {1: {"noir", "remake"}, 2: {"noir", "remake", "sequel"}, 3: set(), 4: {"remake"}, 6: set()}
    assert "fresh" not in set(artifact.frame("vocabulary")["value"])


def test_tag_counts_per_phase_are_in_the_metadata(tagged):
    _, artifact, metadata = tagged
    assert metadata["titles_with_tags"].value == {"train": 2, "score": 4}  # score: 1, 2, 3 (late) and 4
    assert artifact.meta()["tags"]["tags_before"] == {"train": "2025-02-24 00:00:00", "score": "2025-03-03 00:00:00"}


def test_the_week_tags_count_applications_before_the_bound_for_the_weeks_titles_only(tagged):
    warehouse_db, _, _ = tagged
    rows = load_week_tags(warehouse_db, WEEK, datetime(2025, 2, 24))
    assert list(rows.itertuples(index=False, name=None)) == [
        (1, "noir", 2), (2, "noir", 1), (2, "remake", 1), (2, "sequel", 1)]  # title 5's noir: not in the week


def test_without_tags_the_vectors_are_those_of_the_catalogue_alone(tmp_path):
    warehouse_db, artifact, metadata = run_features(tmp_path, [])
    catalogue = load_week_catalogue(warehouse_db, WEEK)  # no tags column at all, as before tags existed
    popularity = {phase: load_popularity(warehouse_db, WEEK, phase) for phase in ("train", "score")}
    config = FeaturesResource().categorical()
    vocabulary = fit_vocabulary(catalogue, config, popularity=popularity["train"])
    pd.testing.assert_frame_equal(artifact.frame("vocabulary"), vocabulary)
    assert "tag" not in set(vocabulary["field"])
    for phase in ("train", "score"):
        expected = encode(catalogue, popularity[phase], vocabulary, config)
        np.testing.assert_array_equal(artifact.array(f"{phase}_offsets"), expected.offsets)
        np.testing.assert_array_equal(artifact.array(f"{phase}_indices"), expected.indices)
    assert metadata["titles_with_tags"].value == {"train": 0, "score": 0}
    assert metadata["tag_vocabulary_size"].value == 0


SYNOPSES = {1: "A detective hunts a killer through the city.", 2: "The queen and her knights defend the castle.",
            3: "zxqvw blorptang", 4: None, 6: "A young wizard learns magic at school."}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The synopsis and cover-art assets of the week on titles with synopses and covers (title 4 has neither)."""
    tmp_path = tmp_path_factory.mktemp("embedded")
    titles = titles_frame()
    titles["synopsis"] = [SYNOPSES.get(t) for t in titles["title_id"]]
    titles["image"] = [None if t == 4 else str(write_jpeg(tmp_path / f"{t}.jpg", seed=t, size=(160, 240)))
                       for t in titles["title_id"]]
    warehouse_db = build_warehouse(tmp_path / "w.duckdb", [], titles)
    artifacts = ArtifactsResource(root=str(tmp_path / "artifacts"))
    result = materialize(
        [title_synopsis_embeddings, title_cover_art_embeddings],
        resources={"warehouse_db": warehouse_db, "artifacts": artifacts,
                   "features": FeaturesResource(cover_art_workers=0)},
        partition_key=WEEK,
    )
    assert result.success
    return result, artifacts


def _metadata(result, node: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


def test_cover_art_asset_records_its_encoder(embedded):
    result, _ = embedded
    metadata = _metadata(result, "title_cover_art_embeddings")
    assert metadata["encoder"] == "efficientnet_lite0" and len(metadata["weights_sha256"]) == 64
    assert metadata["input_size"] == "224 px" and metadata["items_per_second"] > 0
    assert metadata["cache_tag"].startswith("efficientnet_lite0-") and metadata["missing"] == 1
    ref = result.output_for_node("title_cover_art_embeddings")
    assert ref.details == {"width": 1280, "encoder": "efficientnet_lite0"}
    artifact = ref.open()
    assert artifact.array("embeddings").shape == (5, 1280)
    assert artifact.meta()["encoder"] == "efficientnet_lite0"
    assert artifact.meta()["weights_sha256"] == metadata["weights_sha256"]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["cover_art_width_as_configured"] and checks["synopsis_width_as_configured"]


def test_synopsis_asset_records_its_encoder_and_unknown_words(embedded):
    result, _ = embedded
    metadata = _metadata(result, "title_synopsis_embeddings")
    assert metadata["encoder"] == "glove50" and len(metadata["weights_sha256"]) == 64
    assert metadata["input_size"] == "50 floats" and metadata["items_per_second"] > 0
    assert metadata["synopses_without_known_word"] == 1  # title 3's made-up words
    assert metadata["oov"]["n_oov_tokens"] == 2 and metadata["oov_token_share"] > 0
    assert set(metadata["oov_top_words"]) == {"zxqvw", "blorptang"}
    ref = result.output_for_node("title_synopsis_embeddings")
    assert ref.details == {"width": 50, "encoder": "glove50"} and ref.open().meta()["encoder"] == "glove50"


def test_the_weeks_encoder_label_reads_the_artifacts(embedded):
    result, artifacts = embedded
    cover, synopsis = (result.output_for_node(n) for n in ("title_cover_art_embeddings", "title_synopsis_embeddings"))
    assert encoders_label(cover, synopsis) == "efficientnet_lite0+glove50"
    assert week_encoders_label(artifacts.path(), WEEK) == "efficientnet_lite0+glove50"


def test_encoder_settings_come_from_the_environment(monkeypatch):
    defaults = features_resource()
    assert defaults.cover_art_encoder == "" and defaults.cover_art_weights == "auto"  # efficientnet_lite0
    assert defaults.synopsis_encoder == "glove50"
    assert defaults.cover_art_width() == 1280 and defaults.synopsis_width() == 50
    monkeypatch.setenv("REC_COVER_ENCODER", "resnet34-random")
    monkeypatch.setenv("REC_SYNOPSIS_ENCODER", "minilm")
    chosen = features_resource().process_config_and_initialize()
    assert chosen.cover_art().encoder == "resnet34-random" and chosen.synopsis().encoder == "minilm"
    assert chosen.cover_art_width() == 512 and chosen.synopsis_width() == 384
    monkeypatch.delenv("REC_COVER_ENCODER")
    monkeypatch.setenv("REC_COVER_WEIGHTS", "random")  # as before encoders: random ResNet-34
    legacy = features_resource().process_config_and_initialize()
    assert legacy.cover_art_width() == 512
