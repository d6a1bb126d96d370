"""One benchmark stage per child process: ``python -m rec_assets.bench.stages STAGE --preset P --home H --out F``.

The runner (:mod:`rec_assets.bench.run_all`) measures the child; the child writes what it measured as JSON to
``--out``. Stages that go through Dagster set ``REC_HOME``, ``REC_SIM_PRESET`` and ``DAGSTER_HOME`` before importing
the definitions, which read them at import time. A ``<stage>_bound`` stage measures the bare computation that
``<stage>`` is compared with. What each stage measures: docs/design.md, "make bench".
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

PRODUCTION_VARIANT = "attention_id"
SPLIT_ASSETS = ("split_windows", "cold_start_titles", "title_popularity", "week_titles")


def configure_env(preset: str, home: Path, epochs: int | None = None) -> None:
    """The environment the definitions read at import time: a bench REC_HOME per preset."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["REC_HOME"] = str(home)
    os.environ["REC_SIM_PRESET"] = preset
    os.environ["REC_DATA_SOURCE"] = "simulator"
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    for name in ("REC_DUCKDB", "REC_ARTIFACTS", "REC_FIRST_WEEK", "REC_DATA_DIR"):
        os.environ.pop(name, None)
    if epochs is not None:
        os.environ["REC_EPOCHS"] = str(epochs)


def _source_dir(preset: str, home: Path) -> Path:
    from rec_assets.sources.simulator import config_for, ensure_generated

    return ensure_generated(config_for(preset, 0), home / "sources")


def _defs_and_instance():
    from dagster import DagsterInstance

    from rec_assets.cli.main import prepare_dagster_home

    prepare_dagster_home()
    from rec_assets.definitions import build_definitions

    return build_definitions(), DagsterInstance.get()


def _latest_week() -> str:
    from rec_assets.defs.partitions import SCORING_WEEKS

    return SCORING_WEEKS.get_partition_keys()[-1]


def _execute(defs, instance, keys: tuple[str, ...], week: str):
    from dagster import AssetKey

    from rec_assets.defs.jobs import SCORING_WEEK_JOB

    job = defs.resolve_job_def(SCORING_WEEK_JOB)
    result = job.execute_in_process(instance=instance, partition_key=week, raise_on_error=False,
                                    asset_selection=[AssetKey(k) for k in keys])
    if not result.success:
        failures = [f"{e.step_key}: {e.message}" for e in result.all_events if e.is_failure]
        raise RuntimeError(f"run {result.run_id} of {keys} failed: {failures[:5]}")
    return result


def _materialization_metadata(result, key: str) -> dict:
    from dagster import AssetKey

    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key == AssetKey(key):
            return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return {}


# ----------------------------------------------------------------------------------------------------------------
# Stages


def stage_generate(args) -> dict:
    started = time.perf_counter()
    path = _source_dir(args.preset, args.home)
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").exists() else {}
    return {"source_dir": str(path), "seconds": round(time.perf_counter() - started, 2),
            "events_csv_bytes": (path / "events.csv").stat().st_size,
            "manifest_counts": {k: v for k, v in manifest.items() if isinstance(v, int)}}


def stage_ingest(args) -> dict:
    from rec_assets.cli.stages import ingest_stage
    from rec_assets.defs.partitions import SCORING_WEEKS

    defs, instance = _defs_and_instance()
    keys = SCORING_WEEKS.get_partition_keys()
    week = keys[-1]
    started = time.perf_counter()
    ingest = ingest_stage(defs).execute(instance)  # every event week in one run, as `make run` ingests them
    if not ingest.success:
        raise RuntimeError(f"ingestion run {ingest.run_id} failed")
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    _execute(defs, instance, SPLIT_ASSETS, week)
    split_s = time.perf_counter() - started
    with defs.resources["warehouse_db"].connect(read_only=True) as conn:
        events = conn.execute("SELECT count(*) FROM raw_watch_events").fetchone()[0]
        titles = conn.execute("SELECT count(*) FROM week_titles WHERE scoring_week = $w", {"w": week}).fetchone()[0]
    return {"scoring_week": week, "event_weeks": len(keys), "events": int(events), "week_titles": int(titles),
            "raw_seconds": round(ingest_s, 2), "split_seconds": round(split_s, 2),
            "events_per_second": round(events / (ingest_s + split_s), 1)}


def stage_ingest_bound(args) -> dict:
    """DuckDB on its own over the same event file: one count/min/max scan, and a load (``read_csv`` into a table
    of a fresh database file, as ingestion stores the events), both on 2 threads. The load is the bound."""
    import tempfile

    import duckdb

    path = _source_dir(args.preset, args.home) / "events.csv"
    started = time.perf_counter()
    conn = duckdb.connect()
    conn.execute("SET threads TO 2")
    count, first, last = conn.execute("SELECT count(*), min(\"timestamp\"), max(\"timestamp\") FROM read_csv_auto(?)", [str(path)]).fetchone()
    seconds = time.perf_counter() - started
    conn.close()
    with tempfile.TemporaryDirectory(dir=args.home) as scratch:
        started = time.perf_counter()
        conn = duckdb.connect(str(Path(scratch) / "load.duckdb"))
        conn.execute("SET threads TO 2")
        conn.execute("CREATE TABLE events AS SELECT * FROM read_csv(?)", [str(path)])
        loaded = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
        load_seconds = time.perf_counter() - started
    return {"events": int(count), "min_ts": str(first), "max_ts": str(last), "scan_seconds": round(seconds, 3),
            "scan_events_per_second": round(count / seconds, 1), "loaded_events": int(loaded),
            "seconds": round(load_seconds, 3), "events_per_second": round(loaded / load_seconds, 1)}


def _image_sample(n: int) -> list[tuple[int, str]]:
    defs, _ = _defs_and_instance()
    week = _latest_week()
    with defs.resources["warehouse_db"].connect(read_only=True) as conn:
        rows = conn.execute(
            "SELECT t.title_id, t.image FROM raw_titles t JOIN week_titles w USING (title_id)"
            " WHERE w.scoring_week = $w AND t.image IS NOT NULL ORDER BY hash(t.title_id) LIMIT $n",
            {"w": week, "n": n}).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def _cover_config():
    """The cover-art settings the feature asset uses (FeaturesResource defaults, REC_COVER_* honoured)."""
    from rec_assets.definitions import build_definitions

    return build_definitions().resources["features"].cover_art()


def _cover_resolution(config, backbone) -> int:
    """The crop the feature asset uses for these weights, so the bound runs the same network on the same size."""
    from rec_assets.features.cover_art import resolution_for

    return int(resolution_for(config, backbone))


def _cover_cache_root(base: Path, config, backbone) -> Path:
    """Where embed_cover_art reads and writes this backbone's vectors (the tag names weights and resolution)."""
    return base / f"{backbone.cache_tag}-r{_cover_resolution(config, backbone)}"


def stage_cover_cold(args) -> dict:
    import tempfile

    import pandas as pd
    import torch

    from rec_assets.features.cover_art import backbone_for, embed_cover_art

    torch.set_num_threads(2)
    sample = _image_sample(args.sample)
    titles = pd.DataFrame({"title_id": [t for t, _ in sample], "image": [p for _, p in sample]})
    config = _cover_config()
    backbone = backbone_for(config)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        result = embed_cover_art(titles, config, cache_dir=cache, backbone=backbone)
        seconds = time.perf_counter() - started
    return {"images": len(titles), "computed": result.n_computed, "seconds": round(seconds, 2),
            "images_per_second": round(result.n_computed / seconds, 2), "weights_used": result.weights_used,
            "resolution": _cover_resolution(config, backbone), "batch_size": config.batch_size,
            "num_workers": config.num_workers, "torch_threads": torch.get_num_threads(),
            "stats": {k: v for k, v in result.stats.items() if isinstance(v, (int, float)) and v is not None}}


def stage_cover_bound(args) -> dict:
    """The bare forward pass of the same network on random tensors of the pipeline's crop size and batch size."""
    import math

    import torch

    from rec_assets.features.cover_art import backbone_for

    torch.set_num_threads(2)
    n = min(args.sample, len(_image_sample(args.sample)))
    config = _cover_config()
    backbone = backbone_for(config)
    size, batch_size = _cover_resolution(config, backbone), config.batch_size
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(min(batch_size, n - b * batch_size), 3, size, size, generator=generator)
               for b in range(math.ceil(n / batch_size))]
    with torch.inference_mode():
        backbone.model(batches[0])  # warm-up
        started = time.perf_counter()
        for batch in batches:
            backbone.model(batch)
        seconds = time.perf_counter() - started
    return {"images": n, "batch_size": batch_size, "resolution": size, "seconds": round(seconds, 3),
            "images_per_second": round(n / seconds, 2), "weights_used": backbone.weights_used,
            "torch_threads": torch.get_num_threads()}


def _image_digest(image: str) -> str | None:
    """The sha256 that keys an image's cover-art cache entry; None when the image cannot be read."""
    from rec_assets.storage.hashing import file_sha256

    try:
        return file_sha256(image)
    except OSError:
        return None


def seed_cache(args) -> dict:
    """Steady state of the cover-art cache: a vector for the image of every title available before the week.

    The vectors are deterministic placeholders (seeded from the image hash), not ResNet outputs: computing 19,457
    real embeddings on 2 cores takes 30-60 minutes, and a cache hit costs the same whatever the vector holds. The
    week's own new titles (acquired, or first watched, in the week) are left out, so the features stage embeds them
    for real, as a weekly run does. The training stage then sees placeholder cover-art features for older titles:
    its speed does not depend on their values, its quality figures are not taken from this run.
    """
    from rec_assets.features.cover_art import _cache_path, _write_cached, backbone_for

    defs, _ = _defs_and_instance()
    week = _latest_week()
    with defs.resources["warehouse_db"].connect(read_only=True) as conn:
        rows = conn.execute(
            "WITH fw AS (SELECT title_id, min(ts) AS first_watch FROM raw_watch_events GROUP BY title_id)"
            " SELECT t.image, coalesce(t.acquisition_date::TIMESTAMP, fw.first_watch) < $w::TIMESTAMP AS before"
            " FROM raw_titles t JOIN week_titles w USING (title_id) LEFT JOIN fw USING (title_id)"
            " WHERE w.scoring_week = $w AND t.image IS NOT NULL", {"w": week}).fetchall()
    config = _cover_config()
    backbone = backbone_for(config)
    root = _cover_cache_root(defs.resources["artifacts"].path("cache", "cover_art"), config, backbone)
    new = sum(1 for _, before in rows if not before)
    digests = [(digest, before) for digest, before in ((_image_digest(image), before) for image, before in rows)
               if digest is not None]  # an unreadable image has no cache entry to seed or drop
    seeded = already = 0
    for digest in (d for d, before in digests if before):
        path = _cache_path(root, digest)
        if path.exists():
            already += 1
            continue
        rng = np.random.default_rng(int(digest[:16], 16))
        _write_cached(path, rng.standard_normal(backbone.dim).astype(np.float32))
        seeded += 1
    # The week's new images must be computed: drop any entry an earlier bench run left for them.
    dropped = 0
    for digest in (d for d, before in digests if not before):
        path = _cache_path(root, digest)
        if path.exists():
            path.unlink()
            dropped += 1
    (root / "PLACEHOLDER_VECTORS_WRITTEN_BY_BENCH").write_text("see rec_assets/bench/stages.py seed_cache\n")
    return {"scoring_week": week, "cache_root": str(root), "images_before_week": seeded + already, "seeded": seeded, "already_cached": already,
            "new_images_of_week": new, "dropped_stale_entries": dropped}


def stage_features(args) -> dict:
    from rec_assets.asset_io import FEATURE_ASSETS

    defs, instance = _defs_and_instance()
    week = _latest_week()
    started = time.perf_counter()
    result = _execute(defs, instance, tuple(FEATURE_ASSETS.values()), week)
    seconds = time.perf_counter() - started
    out = {"scoring_week": week, "seconds": round(seconds, 2)}
    for key in FEATURE_ASSETS.values():
        meta = _materialization_metadata(result, key)
        out[key] = {k: meta[k] for k in ("titles", "seconds", "images_computed", "images_from_cache", "missing",
                                         "weights_used") if k in meta}
    return out


def stage_train(args) -> dict:
    from rec_assets.asset_io import tower_asset_name

    defs, instance = _defs_and_instance()
    week = _latest_week()
    key = tower_asset_name(PRODUCTION_VARIANT)
    started = time.perf_counter()
    result = _execute(defs, instance, (key,), week)
    seconds = time.perf_counter() - started
    meta = _materialization_metadata(result, key)
    keep = ("training_examples", "positives", "epochs_run", "best_epoch", "wall_seconds", "examples_per_second",
            "compute_share", "parameters", "best_val_loss", "path")
    return {"scoring_week": week, "variant": PRODUCTION_VARIANT, "asset_seconds": round(seconds, 2),
            "epochs_configured": int(os.environ.get("REC_EPOCHS", "6")), **{k: meta.get(k) for k in keep}}


def _week_data(phase: str):
    from rec_assets.model.inputs import load_week
    from rec_assets.asset_io import FEATURE_ASSETS, load_week_catalogue

    defs, instance = _defs_and_instance()
    week = _latest_week()
    refs = {}
    from dagster import AssetKey

    for name, key in FEATURE_ASSETS.items():
        refs[name] = _load_output(instance, AssetKey(key), week)
    warehouse = defs.resources["warehouse_db"]
    catalogue = load_week_catalogue(warehouse, week)
    windows = _windows(defs, week)
    with warehouse.connect(read_only=True) as conn:
        data = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], phase)
    return defs, week, data


def _load_output(instance, key, week):
    """The stored output (an ArtifactRef or CheckpointRef) of ``key`` for ``week``, read back through the io manager."""
    from rec_assets.defs.resources import ArtifactsResource, from_environment, resolved
    from rec_assets.storage.artifacts import load_stored_ref

    return load_stored_ref(resolved(from_environment(ArtifactsResource)).path(), key.path, week)


def _windows(defs, week: str):
    """The week's windows, as ``rec_assets.defs.split.windows_for`` builds them from a run's partition."""
    from rec_assets.defs.partitions import SCORING_WEEKS
    from rec_assets.defs.resources import WindowsResource, from_environment, resolved
    from rec_assets.split.windows import WindowLengths, week_windows

    resource = resolved(from_environment(WindowsResource))
    lengths = WindowLengths(resource.history_days, resource.label_days, resource.recent_popularity_days)
    window = SCORING_WEEKS.time_window_for_partition_key(week)
    return week_windows(window.start, window.end, lengths)


def stage_train_bound(args) -> dict:
    import torch

    from rec_assets.bench.train_bench import matmul_flops_per_second, training_flops_per_example
    from rec_assets.defs.resources import TrainingResource

    torch.set_num_threads(2)
    _, week, data = _week_data("train")
    training = TrainingResource()
    config = training.train_config()
    flops = training_flops_per_example(PRODUCTION_VARIANT, data.items, data.users, data.labels, config,
                                       embedding_dim=training.embedding_dim, history_len=training.history_len)
    rates = [matmul_flops_per_second(torch.device("cpu"), size=1024, seconds=2.0) for _ in range(2)]
    return {"scoring_week": week, "flops_per_example": flops, "matmul_flops_per_second": max(rates),
            "matmul_size": 1024, "torch_threads": torch.get_num_threads()}


def stage_score(args) -> dict:
    import torch

    from rec_assets.evaluation.week import evaluate_week, recommend

    torch.set_num_threads(2)
    loaded = time.perf_counter()
    defs, week, data = _week_data("score")
    load_s = time.perf_counter() - loaded
    from dagster import AssetKey

    from rec_assets.asset_io import tower_asset_name
    from rec_assets.evaluation.metrics import DEFAULT_TOP_K as k

    ref = _load_output(None, AssetKey(tower_asset_name(PRODUCTION_VARIANT)), week)
    candidates = np.ones(data.items.n_titles, dtype=bool)
    started = time.perf_counter()
    rows = 0
    for frame in recommend(data, ref.path, k, "all", candidates, 4096):
        rows += len(frame)
    recommend_s = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = evaluate_week(data, {PRODUCTION_VARIANT: ref.path}, k=k, chunk_users=4096)
    evaluate_s = time.perf_counter() - started
    n_users, n_titles = data.users.n_users, data.items.n_titles
    return {"scoring_week": week, "users": n_users, "titles": n_titles, "k": k, "load_seconds": round(load_s, 2),
            "recommend_seconds": round(recommend_s, 2), "recommendation_rows": rows,
            "pairs_per_second": round(n_users * n_titles / recommend_s, 1),
            "metrics_seconds": round(evaluate_s, 2),
            "metrics_scored_pairs": evaluation.scored_pairs.get(PRODUCTION_VARIANT)}


def stage_score_bound(args) -> dict:
    import torch

    from rec_assets.bench.scoring_bench import _bare_top_k
    from rec_assets.evaluation.metrics import DEFAULT_TOP_K as k

    torch.set_num_threads(2)
    n_users, n_titles, dim = args.users, args.titles, 512
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(n_users, dim, generator=gen)
    items = torch.randn(n_titles, dim, generator=gen)
    best = float("inf")
    with torch.no_grad():
        for _ in range(2):
            started = time.perf_counter()
            _bare_top_k(users, items, k, 4096)
            best = min(best, time.perf_counter() - started)
    return {"users": n_users, "titles": n_titles, "dim": dim, "k": k, "chunk_users": 4096, "seconds": round(best, 3),
            "pairs_per_second": round(n_users * n_titles / best, 1)}


STAGES = {
    "generate": stage_generate,
    "ingest": stage_ingest,
    "ingest_bound": stage_ingest_bound,
    "cover_cold": stage_cover_cold,
    "cover_bound": stage_cover_bound,
    "seed_cache": seed_cache,
    "features": stage_features,
    "train": stage_train,
    "train_bound": stage_train_bound,
    "score": stage_score,
    "score_bound": stage_score_bound,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--preset", required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--titles", type=int, default=0)
    args = parser.parse_args(argv)
    configure_env(args.preset, args.home, args.epochs)
    result = STAGES[args.stage](args)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
