"""Synopsis embeddings: the TF-IDF-weighted sum checked by hand, missing synopses, pretrained vectors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gensim.models import KeyedVectors

from rec_assets.features.synopsis import (
    REASON_EMPTY,
    REASON_NO_KNOWN_WORD,
    REASON_NO_SYNOPSIS,
    SynopsisConfig,
    embed_synopses,
)
from rec_assets.features.text import tokenize

CORPUS = ["The cat sat on the mat.", "The dog chased the cat!", "A bird flew over the dog"]
SMALL = SynopsisConfig(encoder="word2vec", vector_size=8, window=2, min_count=1, epochs=5, seed=3, l2_normalize=False)


def titles_with(synopses: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"title_id": np.arange(10, 10 + len(synopses), dtype=np.int64), "synopsis": synopses})


def hand_embedding(doc: str, corpus: list[str], vectors: KeyedVectors) -> np.ndarray:
    """sum over distinct words w of doc: count(w, doc) * (ln((1 + n) / (1 + df(w))) + 1) * v(w)."""
    documents = [set(tokenize(d)) for d in corpus]
    n = len(corpus)
    total = np.zeros(vectors.vector_size, dtype=np.float64)
    for word, count in Counter(tokenize(doc)).items():
        if word not in vectors.key_to_index:
            continue
        df = sum(word in d for d in documents)
        total += count * (math.log((1 + n) / (1 + df)) + 1) * vectors[word].astype(np.float64)
    return total


def test_tokenizer_lowercases_word_tokens():
    assert tokenize("The Cat's  mat, 2024!") == ["the", "cat", "s", "mat", "2024"]
    assert tokenize(None) == [] and tokenize("  ...") == []


def test_weighted_sum_equals_hand_computation():
    result = embed_synopses(titles_with(CORPUS), SMALL)
    vectors = result.model.vectors
    assert result.embeddings.dtype == np.float32 and result.embeddings.shape == (3, 8)
    assert not result.missing.any()
    # The idf the vectorizer fitted is the textbook smooth idf: "the" is in every synopsis, "cat" in two.
    idf = dict(zip(result.model.vectorizer.get_feature_names_out(), result.model.vectorizer.idf_))
    assert idf["the"] == pytest.approx(1.0)
    assert idf["cat"] == pytest.approx(math.log(4 / 3) + 1)
    # The fitted vectorizer also takes raw text, through the same tokenizer.
    vectorizer = result.model.vectorizer
    assert (vectorizer.transform([CORPUS[0]]) != vectorizer.transform([tokenize(CORPUS[0])])).nnz == 0
    for row, doc in enumerate(CORPUS):
        np.testing.assert_allclose(result.embeddings[row], hand_embedding(doc, CORPUS, vectors), rtol=1e-5, atol=1e-6)
    assert result.stats["vocabulary_size"] == 11  # the cat sat on mat dog chased a bird flew over
    assert result.stats["oov_token_rate"] == 0.0
    assert result.vectors_used.startswith("word2vec trained on 3 synopses")


def test_l2_normalised_is_the_same_direction():
    raw = embed_synopses(titles_with(CORPUS), SMALL).embeddings
    unit = embed_synopses(titles_with(CORPUS), SynopsisConfig(**{**SMALL.__dict__, "l2_normalize": True})).embeddings
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_missing_synopses_give_zero_vectors_and_flags():
    synopses = ["the cat sat", "the cat ran", None, "", "?!", "zebra"]  # "zebra" is below min_count=2
    config = SynopsisConfig(encoder="word2vec", vector_size=8, min_count=2, epochs=2, seed=0)
    result = embed_synopses(titles_with(synopses), config)
    assert result.missing.tolist() == [False, False, True, True, True, True]
    assert result.reasons == [None, None, REASON_NO_SYNOPSIS, REASON_EMPTY, REASON_EMPTY, REASON_NO_KNOWN_WORD]
    assert not result.embeddings[2:].any()
    np.testing.assert_allclose(np.linalg.norm(result.embeddings[:2], axis=1), 1.0, rtol=1e-6)
    assert result.stats["n_missing"] == 4 and result.stats["n_no_synopsis"] == 1
    assert result.stats["n_empty_synopsis"] == 2 and result.stats["n_no_known_word"] == 1
    # Tokens: the cat sat the cat ran zebra -> "sat", "ran", "zebra" appear once and have no vector.
    assert result.stats["oov_token_rate"] == pytest.approx(3 / 7)


def test_no_synopsis_at_all():
    result = embed_synopses(titles_with([None, ""]), SynopsisConfig(encoder="word2vec", vector_size=4))
    assert result.embeddings.shape == (2, 4) and result.missing.all() and not result.embeddings.any()


VECTORS = {"the": [0.1, 0.2, 0.3], "cat": [1.0, -1.0, 0.5], "dog": [0.0, 2.0, -0.5]}


def write_vectors(path: Path, header: bool) -> Path:
    lines = [f"{len(VECTORS)} 3"] if header else []
    lines += [" ".join([word, *map(str, values)]) for word, values in VECTORS.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["word2vec_text", "glove", "word2vec_binary"])
def test_pretrained_vectors(tmp_path, fmt):
    if fmt == "word2vec_binary":
        text = write_vectors(tmp_path / "vectors.txt", header=True)
        path = tmp_path / "vectors.bin"
        KeyedVectors.load_word2vec_format(str(text)).save_word2vec_format(str(path), binary=True)
    else:
        path = write_vectors(tmp_path / "vectors.txt", header=(fmt == "word2vec_text"))
    corpus = ["The cat sat", "the dog", "the cat and the dog"]
    config = SynopsisConfig(pretrained_path=str(path), pretrained_format=fmt, l2_normalize=False)
    result = embed_synopses(titles_with(corpus), config)
    assert result.embeddings.shape == (3, 3)
    # idf: the -> 1, cat and dog -> ln(4/3) + 1.  Synopsis 0 = 1*v(the) + (ln(4/3)+1)*v(cat); "sat" has no vector.
    expected = np.array(VECTORS["the"]) + (math.log(4 / 3) + 1) * np.array(VECTORS["cat"])
    np.testing.assert_allclose(result.embeddings[0], expected, rtol=1e-6)
    for row, doc in enumerate(corpus):
        np.testing.assert_allclose(result.embeddings[row], hand_embedding(doc, corpus, result.model.vectors), rtol=1e-6)
    assert result.stats["oov_token_rate"] == pytest.approx(2 / 10)  # "sat", "and"
    assert result.vectors_used.startswith(f"pretrained:{path} (format={fmt}, sha256=")


def test_training_is_independent_of_python_hash_seed(tmp_path):
    script = (
        "import sys, hashlib, pandas as pd;"
        "from rec_assets.features.synopsis import SynopsisConfig, embed_synopses;"
        "t = pd.DataFrame({'title_id': range(4), 'synopsis': ['a tale of two cities', 'two cities at war',"
        " 'a war of words', 'words and cities']});"
        "e = embed_synopses(t, SynopsisConfig(encoder='word2vec', vector_size=16, min_count=1, epochs=3)).embeddings;"
        "print(hashlib.sha256(e.tobytes()).hexdigest())"
    )
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1
