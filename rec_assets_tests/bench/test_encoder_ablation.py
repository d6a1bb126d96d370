"""`make compare --encoder-ablation` on the tiny preset: the synopsis variant measured on catalogue word2vec next to
the week's own GloVe vectors (one seed, to stay quick), each row labelled with its encoder, the swapped matrix of the
other encoder's width; the week's own encoder re-uses the run's own rows instead of training twice."""

import json

import numpy as np
import pandas as pd
import pytest

from rec_assets.bench.compare.cli import main
from rec_assets.bench.compare.records import RECORD_KEYS
from rec_assets.bench.encoder_ablation import ABLATION_ENCODERS, parse_encoders, swapped, with_encoder
from rec_assets.model.inputs import WeekData
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.features.synopsis import SynopsisConfig
from rec_assets.model.data import make_synthetic

WEEK = SCORING_WEEKS.get_last_partition_key()


@pytest.fixture(scope="module")
def ablated(materialised, rec_home, tmp_path_factory):
    assert all(result.success for result in materialised)
    out = tmp_path_factory.mktemp("ablation")
    assert main(["--rec-home", str(rec_home), "--weeks", WEEK, "--grid", "none", "--peers", "none",
                 "--variants", "synopsis", "--holdout-two-tower", "none", "--seeds", "1", "--resamples", "200",
                 "--threads", "1", "--encoder-ablation", "--ablation-encoders", "word2vec,glove50",
                 "--out", str(out)]) == 0
    return (json.loads((out / "compare.json").read_text()), (out / "compare.md").read_text(),
            json.loads((out / "cold_start.json").read_text()))


def test_every_encoder_gets_its_labelled_rows_on_both_protocols(ablated):
    report, markdown, records = ablated
    own = report["settings"]["encoders"]
    assert own.endswith("+glove50")
    word2vec = with_encoder(own, "synopsis", "word2vec")
    synopsis = [r for r in records if r["system"] == "synopsis"]
    for label in (own, word2vec):
        for protocol in ("weekly_cold", "lightfm_holdout"):
            rows = [r for r in synopsis if r["encoders"] == label and r["protocol"] == protocol]
            assert rows and any(r["value"] is not None for r in rows), (label, protocol)
    assert all(set(RECORD_KEYS) <= set(r) for r in synopsis)
    keys = [tuple(r[k] for k in ("protocol", "system", "encoders", "category", "metric")) for r in records]
    assert len(keys) == len(set(keys))  # the week's own encoder is the run's own rows, not a second copy
    assert "## Encoders, one modality at a time" in markdown and word2vec in markdown
    table = report["encoder_ablation"]["table"]
    assert {(r["encoders"], r["protocol"]) for r in table} == {(l, p) for l in (own, word2vec)
                                                               for p in ("weekly_cold", "lightfm_holdout")}
    assert all(c["opponent"] == f"synopsis@{own}" for c in report["encoder_ablation"]["comparisons"])


def test_the_swapped_matrix_is_the_other_encoders(ablated):
    runs = {r["encoder"]: r for r in ablated[0]["encoder_ablation"]["runs"]}
    assert runs["word2vec"]["reembedded"] and runs["word2vec"]["width"] == SynopsisConfig().vector_size == 100
    assert runs["word2vec"]["protocols"] == ["weekly_cold", "lightfm_holdout"]
    # glove50 is the week's own: no re-embedding, and its weekly rows are the synopsis checkpoint's
    assert not runs["glove50"]["reembedded"] and runs["glove50"]["width"] == 50
    assert runs["glove50"]["protocols"] == ["lightfm_holdout"]


def test_swapped_replaces_one_modality_only():
    problem = make_synthetic(n_users=20, n_titles=30, n_cold=5)
    week = WeekData(pd.DataFrame({"title_id": problem.train_items.title_ids}), problem.train_items,
                    problem.train_users, problem.train_positives, np.zeros(30, dtype=np.int64))
    vectors, missing = np.ones((30, 7), dtype=np.float32), np.zeros(30, dtype=bool)
    changed = swapped(week, "cover_art", vectors, missing)
    assert changed.items.cover_art.shape == (30, 7) and not changed.items.cover_art_missing.any()
    assert changed.items.synopsis is week.items.synopsis and week.items.cover_art.shape[1] == 512
    with pytest.raises(ValueError):
        swapped(week, "synopsis", vectors[:3], missing[:3])


def test_encoder_names_map_to_their_variant():
    assert parse_encoders("all") == {v: list(e) for v, e in ABLATION_ENCODERS.items()}
    assert parse_encoders("minilm,efficientnet_lite0-random") == {"synopsis": ["minilm"],
                                                                   "cover_art": ["efficientnet_lite0-random"]}
    with pytest.raises(ValueError):
        parse_encoders("resnet50")
    assert with_encoder("efficientnet_lite0+glove50", "cover_art", "efficientnet_lite0-random") == \
        "efficientnet_lite0-random+glove50"
