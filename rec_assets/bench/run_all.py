"""`make bench`: measure each stage of a scoring week on the simulator's presets; write results/bench.{md,json}.

    .venv/bin/python -m rec_assets.bench.run_all                      # default and large presets, full settings
    .venv/bin/python -m rec_assets.bench.run_all --presets default --quick

Each stage runs in its own child process (:mod:`rec_assets.bench.stages`), measured by ``os.wait4``, so this
runner imports nothing heavy (no torch, no dagster): a child's peak memory is its own. Each stage is reported as a
rate ratio against a lower bound measured in the same run. The method: docs/design.md, "make bench".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GOALS = {"end_to_end_seconds": 1800, "end_to_end_peak_rss_bytes": 8 * 1024**3, "ratio": 0.5, "training_ratio": 1 / 3}
PACKAGES = ("torch", "torchvision", "dagster", "duckdb", "numpy", "pandas", "scikit-learn", "gensim", "pillow",
            "great-expectations")


# ----------------------------------------------------------------------------------------------------------------
# Machine


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "hostname": platform.node(),
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_bytes": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------------------------------------------
# Running one stage


def run_stage(stage: str, preset: str, home: Path, log_dir: Path, **options) -> dict:
    """Run ``stage`` in a child process; its figures plus wall, CPU, peak RSS and the load average around it."""
    out = log_dir / f"{preset}-{stage}.json"
    log = log_dir / f"{preset}-{stage}.log"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "rec_assets.bench.stages", stage, "--preset", preset, "--home", str(home),
               "--out", str(out)]
    for name, value in options.items():
        if value is not None:
            command += [f"--{name}", str(value)]
    load_before = load_average()
    print(f"  {preset:8s} {stage:12s} ...", end="", flush=True)
    started = time.perf_counter()
    with log.open("w") as handle:
        child = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    record = {
        "stage": stage,
        "ok": child.returncode == 0 and out.exists(),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        "user_seconds": round(usage.ru_utime, 3),
        "system_seconds": round(usage.ru_stime, 3),
        "peak_rss_bytes": int(usage.ru_maxrss) * 1024,  # kilobytes on Linux
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    if record["ok"]:
        record["figures"] = json.loads(out.read_text())
    else:
        record["error"] = log.read_text()[-3000:]
    print(f" {'ok' if record['ok'] else 'FAILED'} {wall:8.1f} s wall, {record['cpu_seconds']:8.1f} s CPU, "
          f"{record['peak_rss_bytes'] / 2**30:5.2f} GiB peak", flush=True)
    return record


# ----------------------------------------------------------------------------------------------------------------
# One preset


def _ratio(rate: float | None, bound: float | None) -> float | None:
    if not rate or not bound:
        return None
    return round(rate / bound, 4)


STAGE_ORDER = ("generate", "ingest", "ingest_bound", "cover_cold", "cover_bound", "seed_cache", "features", "train",
               "train_bound", "score", "score_bound")


def bench_preset(preset: str, home: Path, log_dir: Path, sample: int, epochs: int | None,
                 stages: set[str] = frozenset(STAGE_ORDER)) -> dict:
    """Run the selected stages in order; a stage whose inputs a failed stage should have made is skipped."""
    home.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    needs = {"cover_cold": "ingest", "cover_bound": "ingest", "seed_cache": "ingest", "features": "seed_cache",
             "train": "features", "train_bound": "train", "score": "train", "score_bound": None}
    options = {"cover_cold": {"sample": sample}, "cover_bound": {"sample": sample}, "train": {"epochs": epochs}}
    for name in STAGE_ORDER:
        if name not in stages:
            continue
        needed = needs.get(name)
        if needed in runs and not runs[needed]["ok"]:
            continue
        extra = dict(options.get(name, {}))
        if name == "score_bound":
            users, titles = _fig(runs, "score", "users"), _fig(runs, "score", "titles")
            if not users:  # no scoring stage ran: the sizes of the preset
                from rec_assets.sources.simulator import config_for

                config = config_for(preset, 0)
                users, titles = config.n_users, config.n_titles
            extra.update(users=users, titles=titles)
        runs[name] = run_stage(name, preset, home, log_dir, **extra)
    return {"preset": preset, "home": str(home), "runs": runs, "summary": summarise(preset, runs, epochs)}


def _fig(runs: dict, stage: str, *path: str):
    value = runs.get(stage, {}).get("figures")
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _resources(run: dict | None) -> dict:
    if not run:
        return {}
    return {k: run.get(k) for k in ("ok", "wall_seconds", "cpu_seconds", "peak_rss_bytes")}


def _bounded_row(runs: dict, stage: str, unit: str, rate, bound: str, bound_rate, detail: dict) -> dict:
    """A stage's row measured against its lower bound: resources, rate, bound rate, their ratio and the goal."""
    return {**_resources(runs[stage]), "unit": unit, "rate": rate, "bound": bound, "bound_rate": bound_rate,
            "ratio": _ratio(rate, bound_rate), "goal_ratio": GOALS["ratio"], "detail": detail}


def summarise(preset: str, runs: dict, epochs: int | None) -> dict:
    """One row per stage: resources, rate, bound rate, ratio and goal."""
    rows = {}
    # Ingestion + split: events per second of the whole child (Dagster start-up included) vs DuckDB's own load of
    # the same file (read_csv into a table of a database file).
    events = _fig(runs, "ingest", "events")
    if events:
        rate = events / runs["ingest"]["wall_seconds"]
        rows["ingest_split"] = _bounded_row(
            runs, "ingest", "events/s", round(rate, 1), "DuckDB read_csv of events.csv into a table",
            _fig(runs, "ingest_bound", "events_per_second"),
            {k: _fig(runs, "ingest", k) for k in ("raw_seconds", "split_seconds")})
    cold = _fig(runs, "cover_cold", "images_per_second")
    if cold:
        rows["cover_art_cold"] = _bounded_row(
            runs, "cover_cold", "images/s", cold, "bare ResNet-34 forward, same batch size",
            _fig(runs, "cover_bound", "images_per_second"),
            {"images": _fig(runs, "cover_cold", "images"), "stats": _fig(runs, "cover_cold", "stats")})
    cover = _fig(runs, "features", "title_cover_art_embeddings")
    if cover:
        rows["features_steady"] = {**_resources(runs["features"]), "unit": "titles",
                                   "rate": None, "bound": None, "bound_rate": None, "ratio": None,
                                   "detail": {k: _fig(runs, "features", k) for k in
                                              ("title_categorical_features", "title_synopsis_embeddings",
                                               "title_cover_art_embeddings")}}
    examples_per_s = _fig(runs, "train", "examples_per_second")
    if examples_per_s:
        flops = _fig(runs, "train_bound", "flops_per_example")
        matmul = _fig(runs, "train_bound", "matmul_flops_per_second")
        compute_share = _fig(runs, "train", "compute_share") or 1.0
        model_rate = flops * examples_per_s if flops else None
        rows["training"] = {**_resources(runs["train"]), "unit": "examples/s", "rate": examples_per_s,
                            "bound": "square float32 torch.mm FLOP rate", "bound_rate": matmul,
                            "model_flops_per_second": model_rate,
                            "ratio": _ratio(model_rate, matmul), "goal_ratio": GOALS["training_ratio"],
                            "ratio_compute_only": _ratio(model_rate / compute_share if model_rate else None, matmul),
                            "detail": {**{k: _fig(runs, "train", k) for k in
                                          ("training_examples", "positives", "epochs_run", "epochs_configured",
                                           "wall_seconds", "compute_share", "parameters")},
                                       "flops_per_example": flops}}
    pairs = _fig(runs, "score", "pairs_per_second")
    if pairs:
        rows["scoring"] = _bounded_row(
            runs, "score", "user-title pairs/s", pairs, "bare chunked matmul + torch.topk, same sizes",
            _fig(runs, "score_bound", "pairs_per_second"),
            {k: _fig(runs, "score", k) for k in
             ("users", "titles", "load_seconds", "recommend_seconds", "metrics_seconds")})
    week_stages = [runs.get(s) for s in ("features", "train", "score")]
    if all(r and r.get("ok") for r in week_stages):
        wall = sum(r["wall_seconds"] for r in week_stages)
        cpu = sum(r["cpu_seconds"] for r in week_stages)
        peak = max(r["peak_rss_bytes"] for r in week_stages)
        titles = _fig(runs, "features", "title_cover_art_embeddings", "titles") or 0
        computed = _fig(runs, "features", "title_cover_art_embeddings", "images_computed") or 0
        cold_extra = (titles - computed) / cold if cold else None
        rows["end_to_end"] = {
            "ok": True, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "peak_rss_bytes": peak,
            "unit": "s", "goal_seconds": GOALS["end_to_end_seconds"], "goal_peak_rss_bytes":
                GOALS["end_to_end_peak_rss_bytes"],
            "meets_goal": wall < GOALS["end_to_end_seconds"] and peak < GOALS["end_to_end_peak_rss_bytes"],
            "training_epochs": epochs if epochs is not None else "production default (REC_EPOCHS=6, early stop)",
            "cold_cache_estimate_seconds": round(wall + cold_extra, 1) if cold_extra is not None else None,
            "detail": {"cover_images_computed": computed, "week_titles": titles},
        }
    for row in rows.values():
        if row.get("ratio") is not None and row.get("goal_ratio"):
            row["meets_goal"] = row["ratio"] >= row["goal_ratio"]
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Output


def _gib(n: int | None) -> str:
    return f"{n / 2**30:.2f}" if n else "-"


def _num(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if abs(x) >= 1e6:
            return f"{x:.3g}"
        return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


STAGE_TITLES = {
    "ingest_split": "ingestion + split (raw, split of the latest week; Dagster in-process)",
    "cover_art_cold": "cover-art embedding, cold cache (fixed sample)",
    "features_steady": "features of the week, steady state (categorical, synopsis, cover art of the new titles)",
    "training": "training, production variant (attention_id)",
    "scoring": "scoring: top-K of all users over all titles (+ metrics)",
    "end_to_end": "week end to end: features + training + scoring + metrics (steady state)",
}


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Benchmarks (`make bench`)",
        "",
        f"Written by `python -m rec_assets.bench.run_all {' '.join(result['argv'])}` on {result['started']} "
        f"in {result['total_seconds'] / 60:.1f} min.",
        "",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores ({m['logical_cores']} logical), "
        f"{_gib(m['memory_bytes'])} GiB memory; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".",
        f"Load average (1, 5, 15 min) at start {result['load_average_start']}, at end {result['load_average_end']}: "
        "on a shared machine the figures are noisy; each stage's load average is in bench.json.",
        "",
        "Each stage runs in its own child process; wall, CPU (user + system, its workers included) and peak resident",
        "memory come from `os.wait4`. Ratio = the stage's rate / its lower bound's rate, both measured in this run.",
        "",
    ]
    for preset in result["presets"]:
        summary = preset["summary"]
        lines += [f"## Preset `{preset['preset']}`", "",
                  "| stage | wall s | CPU s | peak GiB | rate | bound rate | ratio | goal | met |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for key, row in summary.items():
            if key == "end_to_end":
                goal = f"< {row['goal_seconds'] / 60:.0f} min, < {_gib(row['goal_peak_rss_bytes'])} GiB"
                rate = bound = ratio = "-"
            else:
                goal = f">= {row['goal_ratio']:.2f}" if row.get("goal_ratio") else "-"
                rate = f"{_num(row.get('rate'))} {row.get('unit', '')}" if row.get("rate") is not None else "-"
                bound = _num(row.get("bound_rate"))
                ratio = _num(row.get("ratio"))
            met = {True: "yes", False: "**no**", None: "-"}[row.get("meets_goal")]
            lines.append(f"| {STAGE_TITLES.get(key, key)} | {_num(row.get('wall_seconds'))} | "
                         f"{_num(row.get('cpu_seconds'))} | {_gib(row.get('peak_rss_bytes'))} | {rate} | {bound} | "
                         f"{ratio} | {goal} | {met} |")
        lines.append("")
        notes = []
        if "ingest_split" in summary:
            d = summary["ingest_split"]["detail"]
            notes.append(f"Ingestion: raw run {d['raw_seconds']} s, split run {d['split_seconds']} s (inside the "
                         f"child's wall time, which also counts imports and loading the definitions).")
        if "cover_art_cold" in summary:
            row = summary["cover_art_cold"]
            notes.append(f"Cover art cold cache: {row['detail']['images']} images of the week (a fixed sample, "
                         f"empty cache) at {row['rate']} images/s; bare forward {row['bound_rate']} images/s.")
        if "features_steady" in summary:
            d = summary["features_steady"]["detail"]
            c = d.get("title_cover_art_embeddings") or {}
            notes.append(f"Features steady state: {c.get('titles')} titles, {c.get('images_computed')} new images "
                         f"embedded, {c.get('images_from_cache')} from the cache (seeded: see stages.seed_cache); "
                         f"categorical {d.get('title_categorical_features', {}).get('titles')} titles, synopsis "
                         f"{d.get('title_synopsis_embeddings', {}).get('seconds')} s, cover art {c.get('seconds')} s.")
        if "training" in summary:
            row = summary["training"]
            d = row["detail"]
            notes.append(f"Training: {d['positives']} positives, {d['training_examples']} examples in "
                         f"{d['epochs_run']} epochs (configured {d['epochs_configured']}), {_num(row['rate'])} "
                         f"examples/s, compute share {d['compute_share']}; {_num(d['flops_per_example'])} FLOP per "
                         f"example -> {_num(row['model_flops_per_second'])} FLOP/s vs torch.mm "
                         f"{_num(row['bound_rate'])} FLOP/s (ratio over forward/backward/step time only: "
                         f"{row['ratio_compute_only']}).")
        if "scoring" in summary:
            d = summary["scoring"]["detail"]
            notes.append(f"Scoring: {d['users']} users x {d['titles']} titles; recommend {d['recommend_seconds']} s, "
                         f"metrics {d['metrics_seconds']} s, loading the week {d['load_seconds']} s (all in the "
                         f"stage's wall time; the rate counts recommend only).")
        if "end_to_end" in summary:
            row = summary["end_to_end"]
            notes.append(f"End to end: sum of the features, train and score processes; training epochs: "
                         f"{row['training_epochs']}. Cold cache (every image of the week embedded at the sampled "
                         f"cold rate): about {_num(row['cold_cache_estimate_seconds'])} s.")
        failed = [r["stage"] for r in preset["runs"].values() if not r["ok"]]
        if failed:
            notes.append(f"FAILED stages: {', '.join(failed)} (logs in bench.json).")
        lines += [f"- {n}" for n in notes] + [""]
    if result.get("notes"):
        lines += ["## Notes", "", result["notes"], ""]
    return "\n".join(lines)


def write_results(result: dict, args, started: float) -> None:
    result["load_average_end"] = load_average()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    if args.notes and args.notes.exists():
        result["notes"] = args.notes.read_text()
    (args.out / "bench.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "bench.md").write_text(to_markdown(result))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="default,large", help="comma-separated simulator presets")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 200-image cold sample, 1 training epoch (unless set below)")
    parser.add_argument("--sample", type=int, default=None, help="cold-cache cover-art sample (default 1000)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: production's)")
    parser.add_argument("--home", type=Path, default=None, help="bench REC_HOME root (default $REC_HOME/bench)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results", help="where bench.md/json go")
    parser.add_argument("--notes", type=Path, default=Path(__file__).with_name("findings.md"),
                        help="a Markdown file appended to bench.md (default: rec_assets/bench/findings.md)")
    parser.add_argument("--stages", default=None,
                        help=f"comma-separated subset of the stages to run (default all): {', '.join(STAGE_ORDER)}")
    args = parser.parse_args(argv)
    stages = set(args.stages.split(",")) if args.stages else set(STAGE_ORDER)
    unknown = stages - set(STAGE_ORDER)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}")
    sample = args.sample or (200 if args.quick else 1000)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else None)
    root = args.home or Path(os.environ.get("REC_HOME") or PROJECT_ROOT / ".rec_home") / "bench"
    root = root.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = {"argv": argv, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(), "load_average_start": load_average(), "goals": GOALS,
              "settings": {"cover_sample": sample, "epochs": epochs, "home": str(root)}, "presets": []}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as logs:
        for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
            print(f"==> preset {preset}", flush=True)
            result["presets"].append(bench_preset(preset, root / preset, Path(logs), sample, epochs, stages))
            write_results(result, args, started)  # after each preset, so a long run leaves its figures behind
    write_results(result, args, started)
    print(f"wrote {args.out / 'bench.md'} and {args.out / 'bench.json'} in {result['total_seconds'] / 60:.1f} min")
    failed = [r["stage"] for p in result["presets"] for r in p["runs"].values() if not r["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
