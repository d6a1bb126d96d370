"""`make bench`'s runner: it runs stages in child processes and writes results/bench.{md,json} with the keys the
README and the lead read. The full stages take minutes even on `tiny`, so the runner is exercised end to end on the
cheap stages (source generation, the DuckDB scan bound, the bare matmul + topk bound), and the summary and the
Markdown on every stage with recorded figures."""

import json

from rec_assets.bench import run_all

RESOURCE_KEYS = {"ok", "wall_seconds", "cpu_seconds", "peak_rss_bytes", "load_average_before", "load_average_after"}


def test_runner_writes_both_files_on_tiny(tmp_path):
    out = tmp_path / "results"
    code = run_all.main(["--presets", "tiny", "--quick", "--sample", "4", "--home", str(tmp_path / "bench"),
                         "--out", str(out), "--stages", "generate,ingest_bound,score_bound"])
    assert code == 0
    result = json.loads((out / "bench.json").read_text())
    machine = result["machine"]
    assert {"cpu_model", "logical_cores", "usable_cores", "memory_bytes", "versions", "python"} <= set(machine)
    assert machine["memory_bytes"] > 0 and machine["versions"]["torch"]
    assert len(result["load_average_start"]) == 3 and result["settings"]["cover_sample"] == 4
    (preset,) = result["presets"]
    assert preset["preset"] == "tiny"
    assert set(preset["runs"]) == {"generate", "ingest_bound", "score_bound"}
    for run in preset["runs"].values():
        assert RESOURCE_KEYS <= set(run) and run["ok"], run.get("error")
        assert run["wall_seconds"] > 0 and run["peak_rss_bytes"] > 0
    assert preset["runs"]["ingest_bound"]["figures"]["events"] > 0
    assert preset["runs"]["score_bound"]["figures"]["pairs_per_second"] > 0
    markdown = (out / "bench.md").read_text()
    assert "## Preset `tiny`" in markdown and "Load average" in markdown


def _run(stage, wall, figures):
    return {"stage": stage, "ok": True, "wall_seconds": wall, "cpu_seconds": wall * 1.5, "peak_rss_bytes": 2**30,
            "figures": figures}


def test_summary_ratios_goals_and_markdown():
    runs = {
        "ingest": _run("ingest", 10.0, {"events": 1000, "raw_seconds": 5, "split_seconds": 2}),
        "ingest_bound": _run("ingest_bound", 1.0, {"events_per_second": 1000.0}),
        "cover_cold": _run("cover_cold", 20.0, {"images_per_second": 8.0, "images": 100, "stats": {}}),
        "cover_bound": _run("cover_bound", 10.0, {"images_per_second": 10.0}),
        "features": _run("features", 30.0, {"title_cover_art_embeddings": {"titles": 500, "images_computed": 20,
                                                                             "images_from_cache": 480, "seconds": 3},
                                            "title_categorical_features": {"titles": 500},
                                            "title_synopsis_embeddings": {"seconds": 4}}),
        "train": _run("train", 100.0, {"examples_per_second": 1000.0, "compute_share": 0.5, "training_examples": 9,
                                       "positives": 3, "epochs_run": 1, "epochs_configured": 1, "wall_seconds": 90,
                                       "parameters": 7}),
        "train_bound": _run("train_bound", 5.0, {"flops_per_example": 1e6, "matmul_flops_per_second": 2e9}),
        "score": _run("score", 40.0, {"pairs_per_second": 4e6, "users": 10, "titles": 20, "load_seconds": 1,
                                      "recommend_seconds": 2, "metrics_seconds": 3}),
        "score_bound": _run("score_bound", 2.0, {"pairs_per_second": 1e7}),
    }
    summary = run_all.summarise("tiny", runs, epochs=1)
    assert set(summary) == {"ingest_split", "cover_art_cold", "features_steady", "training", "scoring", "end_to_end"}
    assert summary["ingest_split"]["ratio"] == 0.1 and summary["ingest_split"]["meets_goal"] is False
    assert summary["cover_art_cold"]["ratio"] == 0.8 and summary["cover_art_cold"]["meets_goal"] is True
    assert summary["training"]["ratio"] == 0.5 and summary["training"]["meets_goal"] is True  # goal: a third
    assert summary["scoring"]["ratio"] == 0.4 and summary["scoring"]["meets_goal"] is False
    e2e = summary["end_to_end"]
    assert e2e["wall_seconds"] == 170.0 and e2e["meets_goal"] is True
    assert e2e["cold_cache_estimate_seconds"] == 170.0 + 480 / 8.0
    result = {"argv": [], "started": "now", "total_seconds": 60, "machine": run_all.machine_info(),
              "load_average_start": [1, 1, 1], "load_average_end": [1, 1, 1],
              "presets": [{"preset": "tiny", "runs": runs, "summary": summary}]}
    markdown = run_all.to_markdown(result)
    for title in run_all.STAGE_TITLES.values():
        assert title in markdown
