"""Cover-art embeddings: width, determinism, failures that never raise, the content-hash cache, weights choice.

The encoders' own tests (packaged EfficientNet-Lite0, the ImageNet check on real posters) are in test_encoders.py.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rec_assets.features import cover_art_backbone
from rec_assets.features.cover_art import (
    REASON_NO_IMAGE, REASON_NOT_FOUND, REASON_UNDECODABLE, CoverArtConfig, embed_cover_art,
)
from rec_assets.features.cover_art_backbone import EMBEDDING_DIMS, load_backbone

# Small batches and no worker processes keep these tests to seconds; one test runs a worker to cover that path.
# REC_COVER_WEIGHTS=random without an encoder: random ResNet-34, as before encoders could be chosen.
RANDOM = CoverArtConfig(weights="random", seed=0, batch_size=2, num_workers=0)
EMBEDDING_DIM = EMBEDDING_DIMS["resnet34"]  # 512


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (48, 64)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def titles_for(images: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"title_id": np.arange(1, len(images) + 1, dtype=np.int64), "image": images})


@pytest.fixture
def jpegs(tmp_path) -> list[str]:
    return [str(write_jpeg(tmp_path / f"cover_{i}.jpg", seed=i)) for i in range(3)]


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("random", seed=0)


def test_width_512_and_identical_across_runs(jpegs):
    # Two separately built networks (seeded init), one decoding in this process and one in a worker process.
    first = embed_cover_art(titles_for(jpegs), RANDOM)
    second = embed_cover_art(titles_for(jpegs), CoverArtConfig(weights="random", seed=0, batch_size=2, num_workers=1))
    assert first.embeddings.shape == (3, EMBEDDING_DIM) and first.embeddings.dtype == np.float32
    assert not first.missing.any() and first.failures.empty
    assert np.abs(first.embeddings).sum(axis=1).min() > 0
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert first.weights_used == "random(seed=0)" and first.encoder == "resnet34-random"
    assert first.n_computed == 3 and first.n_cached == 0
    assert not np.allclose(first.embeddings[0], first.embeddings[1])


def test_missing_and_corrupt_images_never_raise(tmp_path, jpegs, backbone):
    good = Path(jpegs[0]).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[: len(good) // 3])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a jpeg")
    images = [jpegs[0], str(truncated), None, str(tmp_path / "gone.jpg"), str(garbage)]
    result = embed_cover_art(titles_for(images), RANDOM, backbone=backbone)
    assert result.missing.tolist() == [False, True, True, True, True]
    assert not result.embeddings[1:].any() and result.embeddings[0].any()
    reasons = dict(zip(result.failures["title_id"], result.failures["reason"]))
    assert set(reasons) == {2, 3, 4, 5}
    assert reasons[2].startswith(REASON_UNDECODABLE) and "truncated" in reasons[2]
    assert reasons[3] == REASON_NO_IMAGE
    assert reasons[4] == REASON_NOT_FOUND
    assert reasons[5].startswith(REASON_UNDECODABLE)
    assert result.failures.loc[result.failures["title_id"] == 4, "image"].item() == str(tmp_path / "gone.jpg")
    assert result.n_computed == 1


def test_cache_skips_unchanged_and_recomputes_changed(tmp_path, jpegs, backbone):
    cache = tmp_path / "cache"
    titles = titles_for(jpegs)
    first = embed_cover_art(titles, RANDOM, cache_dir=cache, backbone=backbone)
    assert (first.n_computed, first.n_cached) == (3, 0)
    assert len(list((cache / first.cache_tag).glob("*.npy"))) == 3

    again = embed_cover_art(titles, RANDOM, cache_dir=cache, backbone=backbone)
    assert (again.n_computed, again.n_cached) == (0, 3)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)

    write_jpeg(Path(jpegs[1]), seed=99)  # same name, new bytes
    changed = embed_cover_art(titles, RANDOM, cache_dir=cache, backbone=backbone)
    assert (changed.n_computed, changed.n_cached) == (1, 2)
    np.testing.assert_array_equal(changed.embeddings[[0, 2]], first.embeddings[[0, 2]])
    assert not np.allclose(changed.embeddings[1], first.embeddings[1])

    # A damaged cache file (an interrupted copy, say) is recomputed and rewritten, not served.
    damaged = next((cache / first.cache_tag).glob("*.npy"))
    damaged.write_bytes(b"")
    repaired = embed_cover_art(titles, RANDOM, cache_dir=cache, backbone=backbone)
    assert (repaired.n_computed, repaired.n_cached) == (1, 2)
    # Recomputed in a batch of its own: equal up to CPU kernel rounding, which depends on the batch.
    np.testing.assert_allclose(repaired.embeddings, changed.embeddings, rtol=1e-4, atol=1e-4)
    assert np.load(damaged).shape == (EMBEDDING_DIM,)


def test_same_bytes_embedded_once_and_progress_reported(tmp_path, jpegs, backbone):
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(Path(jpegs[0]).read_bytes())
    calls = []
    result = embed_cover_art(
        titles_for([jpegs[0], str(copy)]), RANDOM, backbone=backbone, progress=lambda *a: calls.append(a)
    )
    assert result.n_computed == 1
    np.testing.assert_array_equal(result.embeddings[0], result.embeddings[1])
    assert calls and calls[-1][:2] == (1, 1) and calls[-1][2] > 0


def test_weights_choice_is_explicit(tmp_path, monkeypatch, caplog, jpegs, backbone):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty hub cache
    with pytest.raises(FileNotFoundError, match="not in the torch hub cache"):
        load_backbone("imagenet")
    # "auto" is the packaged, pretrained EfficientNet-Lite0 (test_encoders.py); without it installed, and without
    # ResNet-34 ImageNet weights, random ResNet-34 weights, said in a warning and in the label.
    monkeypatch.setattr(cover_art_backbone, "efficientnet_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="rec_assets.features.cover_art_backbone"):
        fallback = load_backbone("auto", seed=0)
    assert fallback.weights_used == "random(seed=0)" and fallback.encoder == "resnet34-random"
    assert "RANDOM weights" in caplog.text

    # A state dict on disk, here with a classifier head of another width, which is ignored.
    state = dict(backbone.model.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(5, 512), torch.zeros(5)
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    from_file = load_backbone(str(path))
    assert from_file.weights_used.startswith(f"file:{path} (sha256=")
    assert from_file.cache_tag != backbone.cache_tag
    images = titles_for(jpegs[:1])
    same_crop = dataclasses.replace(RANDOM, resolution=224)  # random weights otherwise use a smaller crop
    np.testing.assert_array_equal(
        embed_cover_art(images, same_crop, backbone=from_file).embeddings,
        embed_cover_art(images, same_crop, backbone=backbone).embeddings,
    )


def test_random_weights_embed_at_their_own_smaller_crop_and_cache_it_apart(tmp_path, jpegs):
    images = titles_for(jpegs[:2])
    small = embed_cover_art(images, RANDOM, cache_dir=tmp_path)
    full = embed_cover_art(images, dataclasses.replace(RANDOM, resolution=224), cache_dir=tmp_path)
    assert small.stats["resolution"] == 128 and full.stats["resolution"] == 224
    assert small.cache_tag != full.cache_tag and full.n_computed == 2
    assert not np.allclose(small.embeddings, full.embeddings)
