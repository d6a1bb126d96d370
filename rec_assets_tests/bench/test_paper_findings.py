"""The paper's findings table: a finding holds only when A is significantly better in every comparison, does not
hold when A is significantly worse in any, is not separable otherwise, and is "not measured" without evidence."""

import json

import numpy as np
import pandas as pd

from rec_assets.bench.paper_findings import (
    HOLDS, NOT_HOLD, NOT_MEASURED, NOT_SEPARABLE, findings_markdown, paper_findings,
)

N = 200  # users
FAST = {"n_resamples": 200, "seed": 0}


def frame(rates: dict[str, float], protocols=("weekly_warm", "weekly_cold"), categories=("movie", "tv"),
          metric: str = "p@6", n_users: int = N, seed: int = 0) -> pd.DataFrame:
    """Per-user 0/1 values, one week, each system drawing hits at its rate independently of the others."""
    rng = np.random.default_rng(seed)
    parts = []
    for protocol in protocols:
        for category in categories:
            for system, rate in rates.items():
                parts.append(pd.DataFrame({
                    "protocol": protocol, "system": system, "category": category, "scoring_week": "2026-11-02",
                    "seed": -1, "user_id": np.arange(n_users), "metric": metric,
                    "value": (rng.random(n_users) < rate).astype(float)}))
    columns = ["protocol", "system", "category", "scoring_week", "seed", "user_id", "metric", "value"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def of(rows, finding, protocol=None, category=None):
    return [r for r in rows if r["finding"] == finding and (protocol is None or r["protocol"] == protocol)
            and (category is None or r["category"] == category)]


def test_clearly_better_system_holds_on_every_protocol_and_category():
    rows = paper_findings(frame({"categorical": 0.6, "synopsis": 0.2, "cover_art": 0.2}), **FAST)
    found = of(rows, "categorical_best_single_type")
    assert {(r["protocol"], r["category"]) for r in found} == {
        ("weekly_warm", "movie"), ("weekly_warm", "tv"), ("weekly_cold", "movie"), ("weekly_cold", "tv")}
    for r in found:
        assert r["verdict"] == HOLDS
        assert [(c["a"], c["b"]) for c in r["comparisons"]] == [("categorical", "synopsis"),
                                                                ("categorical", "cover_art")]
        assert all(c["ci_low"] > 0 and c["n_users"] == N and c["verdict"] == f"categorical beats {c['b']}"
                   for c in r["comparisons"])
        assert r["evidence"].startswith("categorical − synopsis +")
        assert "points [" in r["evidence"] and "categorical − cover_art" in r["evidence"]


def test_one_significantly_worse_comparison_means_does_not_hold():
    # attention wins with ID but loses without it: the finding is contradicted, not merely unseparated
    rows = paper_findings(frame({"attention_no_id": 0.2, "concat_no_id": 0.6, "attention_id": 0.6,
                                 "concat_id": 0.2}), **FAST)
    found = of(rows, "attention_beats_concat")
    assert len(found) == 4 and all(r["verdict"] == NOT_HOLD for r in found)
    verdicts = {(c["a"], c["b"]): c["verdict"] for c in found[0]["comparisons"]}
    assert verdicts == {("attention_no_id", "concat_no_id"): "concat_no_id beats attention_no_id",
                        ("attention_id", "concat_id"): "attention_id beats concat_id"}
    assert found[0]["comparisons"][0]["ci_high"] < 0


def test_identical_distributions_are_not_separable_even_beside_a_win():
    rows = paper_findings(frame({"attention_no_id": 0.4, "concat_no_id": 0.4, "attention_id": 0.7,
                                 "concat_id": 0.2}), **FAST)
    for r in of(rows, "attention_beats_concat"):
        assert r["verdict"] == NOT_SEPARABLE
        first, second = r["comparisons"]
        assert first["ci_low"] <= 0 <= first["ci_high"] and first["verdict"] == "not separable"
        assert second["verdict"] == "attention_id beats concat_id"


def test_missing_systems_are_skipped_and_none_left_is_not_measured():
    long = frame({"attention_id": 0.7, "concat_id": 0.2, "synopsis": 0.2, "categorical": 0.3},
                 protocols=("weekly_warm",), categories=("movie",))
    rows = paper_findings(long, **FAST)
    warm = of(rows, "attention_id_best_warm", "weekly_warm", "movie")[0]
    assert [c["b"] for c in warm["comparisons"]] == ["synopsis", "categorical", "concat_id"]
    assert warm["verdict"] == HOLDS
    single = of(rows, "categorical_best_single_type", "weekly_warm", "movie")[0]
    assert [c["b"] for c in single["comparisons"]] == ["synopsis"]  # cover_art is missing: skipped
    # no attention_no_id at all: every comparison skipped
    assert of(rows, "attention_no_id_best_cold")[0]["verdict"] == NOT_MEASURED
    assert of(rows, "attention_no_id_best_cold")[0]["comparisons"] == []
    assert of(rows, "attention_no_id_best_cold")[0]["evidence"] == "n/a"
    # a protocol absent from the frame still shows up, unmeasured
    cold = of(rows, "categorical_best_single_type", "weekly_cold")
    assert [(r["category"], r["verdict"]) for r in cold] == [(None, NOT_MEASURED)]


def test_only_the_weekly_protocols_movie_tv_and_p_at_k_are_read():
    long = pd.concat([frame({"categorical": 0.6, "synopsis": 0.2}, protocols=("weekly_holdout",)),
                      frame({"categorical": 0.6, "synopsis": 0.2}, categories=("all",)),
                      frame({"categorical": 0.2, "synopsis": 0.6}, metric="p@10")], ignore_index=True)
    rows = paper_findings(long, **FAST)
    assert {r["protocol"] for r in rows} <= {"weekly_warm", "weekly_cold", None}
    assert all(r["verdict"] == NOT_MEASURED for r in rows)
    at_10 = of(paper_findings(long, k=10, **FAST), "categorical_best_single_type")
    assert [r["verdict"] for r in at_10] == [NOT_HOLD] * 4 and all(r["metric"] == "p@10" for r in at_10)


def test_rows_are_json_without_nan():
    # one user: the bootstrap has no interval (NaN), which must come out as None
    long = frame({"categorical": 0.5, "synopsis": 0.5}, n_users=1)
    rows = paper_findings(long, attention_means={"attention_no_id": {"movie": {"cover_art": 0.1, "id": 0.9}}},
                          **FAST)
    json.dumps(rows, allow_nan=False)
    c = of(rows, "categorical_best_single_type")[0]["comparisons"][0]
    assert c["ci_low"] is None and c["ci_high"] is None and c["n_users"] == 1


def test_cover_art_lowest_attention_from_hand_made_means():
    means = {"attention_no_id": {"movie": {"categorical": 0.4, "synopsis": 0.35, "cover_art": 0.25},
                                 "tv": {"categorical": 0.4, "synopsis": 0.2, "cover_art": 0.4}},
             "attention_id": {"movie": {"id": 0.5, "categorical": 0.5}}}
    rows = of(paper_findings(frame({}), attention_means=means, **FAST), "cover_art_lowest_attention")
    verdicts = {(r["variant"], r["category"]): r["verdict"] for r in rows}
    assert verdicts == {("attention_no_id", "movie"): HOLDS, ("attention_no_id", "tv"): NOT_HOLD,
                        ("attention_id", "movie"): NOT_MEASURED}
    assert all(r["comparisons"] == [] and "no interval" in r["note"] for r in rows)
    held = [r for r in rows if r["verdict"] == HOLDS][0]
    assert held["evidence"] == "attention_no_id: cover_art 0.250, synopsis 0.350, categorical 0.400"
    missing = of(paper_findings(frame({}), **FAST), "cover_art_lowest_attention")
    assert [r["verdict"] for r in missing] == [NOT_MEASURED]


def test_markdown_lists_every_finding_with_its_verdict():
    rows = paper_findings(frame({"categorical": 0.6, "synopsis": 0.2, "cover_art": 0.2, "attention_no_id": 0.2,
                                 "concat_no_id": 0.6}),
                          attention_means={"attention_no_id": {"movie": {"synopsis": 0.5, "cover_art": 0.1}}},
                          **FAST)
    text = findings_markdown(rows, "the simulator")
    assert text.startswith("## The paper's findings on the simulator\n")
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(table) == len(rows)
    for line, r in zip(table, rows):
        assert r["statement"] in line and f"**{r['verdict']}**" in line
    for statement in ("categorical is the best single metadata type", "attention beats concatenation",
                      "attention w/ ID is best on warm titles", "attention w/o ID is best on cold titles",
                      "cover art gets the lowest attention weight"):
        assert statement in text
    for verdict in (HOLDS, NOT_HOLD, NOT_MEASURED):
        assert f"**{verdict}**" in text
