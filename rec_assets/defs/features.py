"""Title feature assets: categorical multi-hot, synopsis and cover-art embeddings of a scoring week.

Each has one row per title available in the week (cold-start titles included), in ``title_id`` order,
written as an artifact directory under ``$REC_HOME/artifacts/features/<kind>/<week>/``. The asset's
output is an ``ArtifactRef`` (path and content hash) that the tower assets take as an input, so a
checkpoint's lineage names the exact feature versions it was trained on.
"""


import time
from datetime import datetime

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    ConfigurableResource,
    MetadataValue,
    asset,
)
from pydantic import Field

from rec_assets.asset_io import ANALYSES, load_week_catalogue
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import ArtifactsResource, WarehouseResource, from_environment, setting
from rec_assets.defs.week_inputs import artifact_output
from rec_assets.features.categorical import TAG, CategoricalConfig, describe, encode, fit_vocabulary
from rec_assets.features.cover_art import CoverArtConfig, embed_cover_art
from rec_assets.features.cover_art_backbone import EMBEDDING_DIMS, resolve_encoder
from rec_assets.features.synopsis import (
    DEFAULT_SYNOPSIS_ENCODER,
    GLOVE50,
    MINILM,
    SYNOPSIS_ENCODERS,
    SynopsisConfig,
    embed_synopses,
)
from rec_assets.sqlmodels.runner import query
from rec_assets.storage.artifacts import ArtifactRef, write_artifact

FEATURES_GROUP = "features"


class FeaturesResource(ConfigurableResource):
    """Feature settings (section 3.2 of the paper)."""

    top_n_people: int = Field(default=2000, description="Top actors and directors kept (each).")
    top_n_tags: int = Field(default=500, description="Top tags kept (by the number of titles carrying them).")
    popularity_bins: int = Field(default=10, description="Uniform bins of the log popularity shares.")
    synopsis_encoder: str = setting(
        "REC_SYNOPSIS_ENCODER", DEFAULT_SYNOPSIS_ENCODER,
        f"one of {', '.join(SYNOPSIS_ENCODERS)}: GloVe 6B 50d (default) or catalogue-trained word2vec, "
        "TF-IDF-weighted; or the all-MiniLM-L6-v2 sentence encoder (384 floats).",
    )
    synopsis_vector_size: int = Field(default=100, description="word2vec dimensions.")
    synopsis_epochs: int = Field(default=10, description="word2vec epochs.")
    synopsis_min_count: int = Field(default=2, description="word2vec minimum word count.")
    synopsis_pretrained_path: str = setting("REC_WORD_VECTORS", "", "pretrained vectors instead.")
    synopsis_pretrained_format: str = Field(default="word2vec_text", description="word2vec_text, word2vec_binary or glove.")
    cover_art_encoder: str = setting(
        "REC_COVER_ENCODER", "",
        "efficientnet_lite0 (ImageNet, packaged; the default), resnet34 (ImageNet from the torch cache), "
        "efficientnet_lite0-random or resnet34-random. Empty: efficientnet_lite0, or ResNet-34 when "
        "REC_COVER_WEIGHTS names imagenet, random or a state-dict file.",
    )
    cover_art_weights: str = setting("REC_COVER_WEIGHTS", "auto", "auto (the encoder's own), imagenet, random or a "
                                     "state dict.")
    cover_art_resolution: int = setting("REC_COVER_RESOLUTION", 0, "crop size; 0 = 224 for trained weights, 128 for "
                                        "random ones.")
    cover_art_batch_size: int = Field(default=32)
    cover_art_workers: int = Field(default=1, description="Image decoding processes beside the network.")
    max_missing_share: float = Field(default=0.10, description="Warn above this share of zero (missing) vectors.")
    seed: int = Field(default=0)

    def categorical(self) -> CategoricalConfig:
        return CategoricalConfig(
            top_n_actors=self.top_n_people, top_n_directors=self.top_n_people, top_n_tags=self.top_n_tags,
            popularity_bins=self.popularity_bins,
        )

    def synopsis(self) -> SynopsisConfig:
        return SynopsisConfig(
            encoder=self.synopsis_encoder,
            vector_size=self.synopsis_vector_size,
            epochs=self.synopsis_epochs,
            min_count=self.synopsis_min_count,
            seed=self.seed,
            pretrained_path=self.synopsis_pretrained_path or None,
            pretrained_format=self.synopsis_pretrained_format,
        )

    def cover_art(self) -> CoverArtConfig:
        return CoverArtConfig(
            encoder=self.cover_art_encoder or None,
            weights=self.cover_art_weights,
            resolution=self.cover_art_resolution or None,
            seed=self.seed,
            batch_size=self.cover_art_batch_size,
            num_workers=self.cover_art_workers,
        )

    def cover_art_width(self) -> int:
        """The embedding width the configured cover-art encoder gives (1280 EfficientNet-Lite0, 512 ResNet-34)."""
        config = self.cover_art()
        return EMBEDDING_DIMS[resolve_encoder(config.encoder, config.weights)[0]]

    def synopsis_width(self) -> int | None:
        """The configured synopsis width; None when a vectors file (REC_WORD_VECTORS) decides it."""
        if self.synopsis_encoder == MINILM:
            return 384
        if self.synopsis_pretrained_path:
            return None
        return 50 if self.synopsis_encoder == GLOVE50 else self.synopsis_vector_size


def features_resource() -> FeaturesResource:
    """The feature settings with their environment variables bound (``EnvVar`` where set)."""
    return from_environment(FeaturesResource)


def load_popularity(warehouse_db: WarehouseResource, week: str, context_name: str) -> pd.DataFrame:
    with warehouse_db.connect(read_only=True) as conn:
        return query(conn, ANALYSES["week_popularity"], {"scoring_week": week, "context": context_name}).df()


# Phase -> the split window whose end is the phase's "now": nothing from later may reach its features.
HISTORY_WINDOWS = {"train": "X", "score": "X_prime"}


def load_history_ends(warehouse_db: WarehouseResource, week: str) -> dict[str, datetime]:
    """End of each phase's history window as the week's split stored it: 'train' = end of X, 'score' = end of X'."""
    with warehouse_db.connect(read_only=True) as conn:
        ends = dict(conn.execute(
            "SELECT window_name, window_end FROM split_windows WHERE scoring_week = $week::DATE",
            {"week": week},
        ).fetchall())
    missing = [name for name in HISTORY_WINDOWS.values() if name not in ends]
    if missing:
        raise ValueError(f"split_windows has no window {missing} for week {week}: materialise split_windows first")
    return {phase: ends[name] for phase, name in HISTORY_WINDOWS.items()}


def load_week_tags(warehouse_db: WarehouseResource, week: str, before: datetime) -> pd.DataFrame:
    """(title_id, tag, applications) of the week's titles, counting only applications strictly before ``before``."""
    with warehouse_db.connect(read_only=True) as conn:
        return query(conn, ANALYSES["week_title_tags"], {"scoring_week": week, "tags_before": before}).df()


def with_tags(titles: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """The titles with a list column ``tags``: each title's distinct tags, sorted ([] for a title without)."""
    by_title = tags.groupby("title_id")["tag"].agg(lambda values: sorted(set(values))).to_dict()
    return titles.assign(tags=[by_title.get(t, []) for t in titles["title_id"].tolist()])


def _week(context: AssetExecutionContext) -> str:
    return context.partition_key


def feature_checks(name: str, titles: pd.DataFrame, title_ids: np.ndarray, vectors: np.ndarray | None,
                   missing: np.ndarray | None, expected_width: int, max_missing_share: float) -> list[AssetCheckResult]:
    """The checks every feature asset runs: one row per title of the week, finite values, width, missing share."""
    expected = titles["title_id"].to_numpy(dtype=np.int64)
    absent = np.setdiff1d(expected, title_ids)
    results = [
        AssetCheckResult(
            check_name=f"{name}_cover_every_week_title",
            passed=len(absent) == 0 and len(title_ids) == len(expected),
            description=(f"{len(title_ids)} rows for {len(expected)} titles of the week"
                         + (f"; {len(absent)} titles have no row, e.g. {absent[:5].tolist()}" if len(absent) else "")),
            metadata={"titles_without_row": int(len(absent))},
        )
    ]
    if vectors is not None:
        bad_rows = int((~np.isfinite(vectors)).any(axis=1).sum())
        results.append(AssetCheckResult(
            check_name=f"{name}_values_finite",
            passed=bad_rows == 0,
            description=f"{bad_rows} rows hold a NaN or infinite value",
            metadata={"rows_not_finite": bad_rows},
        ))
        results.append(AssetCheckResult(
            check_name=f"{name}_width_as_configured",
            passed=vectors.shape[1] == expected_width,
            description=f"width {vectors.shape[1]}, configured {expected_width}",
        ))
    if missing is not None:
        share = float(missing.mean()) if len(missing) else 0.0
        results.append(AssetCheckResult(
            check_name=f"{name}_missing_share_below_threshold",
            passed=share <= max_missing_share,
            severity=AssetCheckSeverity.WARN,
            description=f"{int(missing.sum())} of {len(missing)} titles have a zero (missing) vector ({share:.1%}); "
                        f"threshold {max_missing_share:.0%}",
            metadata={"missing": int(missing.sum()), "missing_share": share},
        ))
    return results


def _check_specs(name: str, asset_name: str, with_vectors: bool = True) -> list[AssetCheckSpec]:
    names = [f"{name}_cover_every_week_title"]
    if with_vectors:
        names += [f"{name}_values_finite", f"{name}_width_as_configured", f"{name}_missing_share_below_threshold"]
    return [AssetCheckSpec(n, asset=asset_name, blocking=not n.endswith("threshold")) for n in names]


FEATURE_DEPS = ["week_titles", "raw_titles"]


def embedding_asset(kind: str, name: str, kinds: set[str], code_version: str, description: str):
    """The decorator of a title-embedding asset of the week: one group, partitions, inputs and checks for all."""
    return asset(name=name, group_name=FEATURES_GROUP, kinds=kinds, partitions_def=SCORING_WEEKS, deps=FEATURE_DEPS,
                 code_version=code_version, check_specs=_check_specs(kind, name), description=description)


def embedding_outputs(kind: str, week: str, titles, result, seconds: float, artifacts: ArtifactsResource,
                      width: int, max_missing_share: float, meta: dict, metadata: dict, frames: dict | None = None):
    """Write an embedding artifact (title ids, vectors, missing flags; ``meta`` holds its ``encoder``) and yield
    its output and checks."""
    path = artifacts.path("features", kind, week)
    content_hash = write_artifact(
        path,
        arrays={"title_ids": result.title_ids, "embeddings": result.embeddings, "missing": result.missing},
        frames=frames,
        # Timings go to the asset's metadata only: the artifact's content hash (which checkpoints record) must
        # not change between two runs of the same week.
        meta={"scoring_week": week, **{k: v for k, v in meta.items() if not k.endswith(("seconds", "per_second"))}},
    )
    details = {"width": int(result.embeddings.shape[1]), "encoder": meta.get("encoder")}
    yield artifact_output(ArtifactRef(str(path), content_hash, kind, week, details), path, content_hash, metadata={
        "titles": len(titles),
        "missing": int(result.missing.sum()),
        "seconds": round(seconds, 2),
        **metadata,
    })
    yield from feature_checks(kind, titles, result.title_ids, result.embeddings, result.missing, width,
                              max_missing_share)


def encoder_metadata(encoder: str, weights_sha256: str | None, input_size: str, items_per_second) -> dict:
    """The four facts every embedding asset records about the encoder that made its vectors."""
    return {
        "encoder": encoder,
        "weights_sha256": weights_sha256 or "none (random or trained here)",
        "input_size": input_size,
        "items_per_second": MetadataValue.float(float(items_per_second)) if items_per_second else MetadataValue.null(),
    }


@asset(
    group_name=FEATURES_GROUP,
    kinds={"python", "numpy"},
    partitions_def=SCORING_WEEKS,
    deps=[*FEATURE_DEPS, "title_popularity", "split_windows", "raw_title_tags"],
    code_version="categorical-v2",
    check_specs=_check_specs("categorical", "title_categorical_features", with_vectors=False),
    description="Multi-hot categorical vectors (genres, top people, tags, rating, country, years, popularity) per "
                "title, for training (popularity and tags as of the end of X) and scoring (as of the end of X').",
)
def title_categorical_features(
    context: AssetExecutionContext,
    warehouse_db: WarehouseResource,
    artifacts: ArtifactsResource,
    features: FeaturesResource,
):
    week = _week(context)
    titles = load_week_catalogue(warehouse_db, week)
    train_popularity = load_popularity(warehouse_db, week, "train")
    score_popularity = load_popularity(warehouse_db, week, "score")
    ends = load_history_ends(warehouse_db, week)
    tags = {phase: load_week_tags(warehouse_db, week, end) for phase, end in ends.items()}
    # Each phase sees the tags of its own history only, and the vocabulary only the training phase's.
    train_titles, score_titles = with_tags(titles, tags["train"]), with_tags(titles, tags["score"])
    config = features.categorical()
    vocabulary = fit_vocabulary(train_titles, config, popularity=train_popularity)
    train_rows = encode(train_titles, train_popularity, vocabulary, config)
    score_rows = encode(score_titles, score_popularity, vocabulary, config)
    summary = describe(vocabulary, score_rows)
    tag_counts = {
        "titles_with_tags": {phase: int(frame["title_id"].nunique()) for phase, frame in tags.items()},
        "tags_before": {phase: str(end) for phase, end in ends.items()},
        "tag_vocabulary_size": int(summary["vocabulary_sizes"].get(TAG, 0)),
    }
    path = artifacts.path("features", "categorical", week)
    content_hash = write_artifact(
        path,
        arrays={
            "title_ids": train_rows.title_ids,
            "train_offsets": train_rows.offsets, "train_indices": train_rows.indices,
            "score_offsets": score_rows.offsets, "score_indices": score_rows.indices,
        },
        frames={"vocabulary": vocabulary},
        meta={"width": int(train_rows.width), "scoring_week": week, **summary, "tags": tag_counts},
    )
    ref = ArtifactRef(str(path), content_hash, "categorical", week, {"width": int(train_rows.width)})
    yield artifact_output(ref, path, content_hash, metadata={
        "titles": len(titles),
        "width": int(train_rows.width),
        "vocabulary_sizes": MetadataValue.json(summary["vocabulary_sizes"]),
        "nonzeros_per_title": MetadataValue.json(summary["nonzeros_per_title"]),
        "dropped_unknown_values": MetadataValue.json(summary["dropped_unknown"]),
        "titles_with_tags": MetadataValue.json(tag_counts["titles_with_tags"]),
        "tag_vocabulary_size": tag_counts["tag_vocabulary_size"],
    })
    yield from feature_checks("categorical", titles, train_rows.title_ids, None, None, train_rows.width, 1.0)


@embedding_asset(
    "synopsis", "title_synopsis_embeddings", {"python", "gensim"}, "synopsis-v3",
    "Each title's synopsis as the TF-IDF-weighted sum of its words' GloVe 6B 50d vectors (default; or "
    "catalogue-trained word2vec), or an all-MiniLM-L6-v2 sentence vector; a zero vector and a flag when "
    "there is no synopsis or no known word. The metadata names the encoder and counts unknown words.",
)
def title_synopsis_embeddings(
    context: AssetExecutionContext,
    warehouse_db: WarehouseResource,
    artifacts: ArtifactsResource,
    features: FeaturesResource,
):
    week = _week(context)
    titles = load_week_catalogue(warehouse_db, week)
    started = time.perf_counter()
    result = embed_synopses(titles, features.synopsis())
    seconds = time.perf_counter() - started
    context.log.info(f"synopsis embeddings of {len(titles)} titles in {seconds:.1f} s; vectors: {result.vectors_used}")
    stats = result.stats
    width = features.synopsis_width() or result.embeddings.shape[1]
    oov = {key: stats[key] for key in ("n_tokens", "n_oov_tokens", "oov_token_rate", "n_words", "n_oov_words",
                                       "oov_word_share", "n_no_known_word") if key in stats}
    yield from embedding_outputs(
        "synopsis", week, titles, result, seconds, artifacts, width, features.max_missing_share,
        meta={**stats, "encoder": result.encoder, "weights_sha256": result.weights_sha256},
        metadata={
            **encoder_metadata(result.encoder, result.weights_sha256, f"{result.embeddings.shape[1]} floats",
                               stats.get("items_per_second")),
            "vectors_used": result.vectors_used,
            "oov_token_share": MetadataValue.float(float(stats.get("oov_token_rate", 0.0))),
            "synopses_without_known_word": int(stats.get("n_no_known_word", 0)),
            "oov": MetadataValue.json(oov),
            "oov_top_words": MetadataValue.json(list(stats.get("oov_top_words", []))),
            "stats": MetadataValue.json({k: v for k, v in stats.items() if isinstance(v, (int, float, str))}),
        },
    )


@embedding_asset(
    "cover_art", "title_cover_art_embeddings", {"python", "pytorch"}, "cover-art-v3",
    "Each title's cover art as an ImageNet CNN's activations before its classifier: EfficientNet-Lite0 "
    "(1280 floats, default) or ResNet-34 (512); cached by image content and encoder; a missing or corrupt "
    "image gives a zero vector and a flag. The metadata names the encoder and its weights' sha256.",
)
def title_cover_art_embeddings(
    context: AssetExecutionContext,
    warehouse_db: WarehouseResource,
    artifacts: ArtifactsResource,
    features: FeaturesResource,
):
    week = _week(context)
    titles = load_week_catalogue(warehouse_db, week)

    def progress(done: int, total: int, per_second: float) -> None:
        context.log.info(f"cover art: {done}/{total} images embedded, {per_second:.1f} images/s")

    started = time.perf_counter()
    result = embed_cover_art(titles, features.cover_art(), cache_dir=artifacts.path("cache", "cover_art"),
                             progress=progress)
    seconds = time.perf_counter() - started
    if result.encoder.endswith("-random"):
        context.log.warning(f"cover-art embeddings come from {result.encoder} ({result.weights_used}): random "
                            "weights, no visual semantics")
    context.log.info(f"cover art of {len(titles)} titles in {seconds:.1f} s: {result.n_computed} computed, "
                     f"{result.n_cached} from the cache; encoder {result.encoder}, weights {result.weights_used}")
    resolution = int(result.stats.get("resolution", 0))
    failures = result.failures.head(20)
    yield from embedding_outputs(
        "cover_art", week, titles, result, seconds, artifacts, features.cover_art_width(), features.max_missing_share,
        meta={"encoder": result.encoder, "weights_used": result.weights_used, "weights_sha256": result.weights_sha256,
              "resolution": resolution, "cache_tag": result.cache_tag,
              "images_per_second": result.stats.get("images_per_second")},
        frames={"failures": result.failures.astype({"image": "string"})},
        metadata={
            **encoder_metadata(result.encoder, result.weights_sha256, f"{resolution} px",
                               result.stats.get("images_per_second")),
            "weights_used": result.weights_used,
            "resolution": resolution,
            "cache_tag": result.cache_tag,
            "images_computed": result.n_computed,
            "images_from_cache": result.n_cached,
            "missing_images": MetadataValue.md(failures.to_markdown(index=False) if not failures.empty else "none"),
        },
    )


feature_assets = [title_categorical_features, title_synopsis_embeddings, title_cover_art_embeddings]
