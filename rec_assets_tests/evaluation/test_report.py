"""Lift tables (paper Tables 1 and 2), the summary across weeks, and the attention figure."""

import base64
import io
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rec_assets.evaluation.report import (
    attention_figure,
    attention_figure_object,
    lift_table,
    png_markdown,
    spread_markdown,
    summary_across_weeks,
    summary_markdown,
    table1_markdown,
    table2_markdown,
)


def long_frame(rows):
    return pd.DataFrame(rows, columns=["scoring_week", "variant", "candidate_set", "category", "metric", "value",
                                       "evaluated_users"])


def segment(week, variant, candidate_set, category, p, r, cov, concov, users):
    return [(week, variant, candidate_set, category, m, v, users)
            for m, v in zip(("precision", "recall", "coverage", "converted_coverage"), (p, r, cov, concov))]


def table_rows(markdown):
    """{first cell: [other cells]} of the Markdown table inside a lift_table output."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return {row[0]: row[1:] for row in cells}


# MovieLens-like: no TV at all (evaluated_users 0, NaN rates).
WARM = long_frame(
    segment("2026-W14", "synopsis", "warm", "movie", 0.02, 0.10, 100, 40, 500)
    + segment("2026-W14", "synopsis", "warm", "tv", float("nan"), float("nan"), 0, 0, 0)
    + segment("2026-W14", "attention_id", "warm", "movie", 0.03, 0.125, 150, 30, 500)
    + segment("2026-W14", "attention_id", "warm", "tv", float("nan"), float("nan"), 0, 0, 0)
    + segment("2026-W14", "random", "warm", "movie", 0.0, 0.01, 900, 0, 500)
)


def test_table1_cells_are_absolute_and_lift_computed_from_the_input():
    rows = table_rows(table1_markdown(WARM))
    header = rows.pop("Model")
    assert header == ["P@6 Movie", "P@6 TV", "R@6 Movie", "R@6 TV", "Cov@6 Movie", "Cov@6 TV",
                      "ConCov@6 Movie", "ConCov@6 TV"]
    assert rows["Synopsis (B)"] == ["2.00% (B)", "n/a", "10.00% (B)", "n/a", "100 (B)", "n/a", "40 (B)", "n/a"]
    # 0.03 vs 0.02: +50 %; 0.125 vs 0.10: +25 %; 150 vs 100: +50 %; 30 vs 40: -25 %
    assert rows["Att (w/ ID)"] == ["3.00% (+50.00%)", "n/a", "12.50% (+25.00%)", "n/a", "150 (+50.00%)", "n/a",
                                   "30 (-25.00%)", "n/a"]
    assert rows["Random"][0] == "0.00% (-100.00%)"
    # Listed but not run: dashes, not numbers.
    assert rows["Cover art"] == ["—"] * 8
    assert list(rows)[:3] == ["Synopsis (B)", "Cover art", "Categorical"]


def test_weeks_are_averaged_and_empty_weeks_do_not_count():
    frame = long_frame(
        segment("W1", "synopsis", "warm", "movie", 0.02, 0.1, 100, 40, 10)
        + segment("W2", "synopsis", "warm", "movie", 0.04, 0.3, 200, 60, 10)
        + segment("W3", "synopsis", "warm", "movie", float("nan"), float("nan"), 0, 0, 0)
        + segment("W1", "concat_id", "warm", "movie", 0.06, 0.4, 300, 100, 10)
    )
    rows = table_rows(lift_table(frame, "synopsis", ["synopsis", "concat_id"]))
    # baseline mean over W1, W2 only: P 0.03, R 0.2, Cov 150, ConCov 50
    assert rows["Synopsis (B)"][::2] == ["3.00% (B)", "20.00% (B)", "150 (B)", "50 (B)"]
    assert rows["Con (w/ ID)"][::2] == ["6.00% (+100.00%)", "40.00% (+100.00%)", "300 (+100.00%)",
                                        "100 (+100.00%)"]
    assert lift_table(frame, "synopsis", ["synopsis"], scoring_weeks=["W2"]).count("4.00% (B)") == 1


def test_table2_has_random_baseline_first_and_handles_a_zero_baseline():
    frame = long_frame(
        segment("W1", "random", "cold", "movie", 0.001, 0.004, 300, 0, 50)
        + segment("W1", "attention_no_id", "cold", "movie", 0.0266, 0.123, 220, 9, 50)
        + segment("W1", "synopsis", "warm", "movie", 0.5, 0.5, 1, 1, 1)  # warm rows stay out of Table 2
    )
    markdown = table2_markdown(frame)
    rows = table_rows(markdown)
    rows.pop("Model")
    assert list(rows)[:3] == ["Random (B)", "Att (w/o ID)", "Att (w/ ID)"]
    assert rows["Att (w/o ID)"][0] == "2.66% (+2560.00%)"
    assert rows["Att (w/o ID)"][6] == "9 (lift n/a)"  # random converted nothing
    assert rows["Synopsis"] == ["—"] * 8
    assert "Cold titles" in markdown


def test_variants_outside_the_row_list_are_appended_not_dropped():
    frame = long_frame(segment("W1", "synopsis", "warm", "movie", 0.1, 0.1, 1, 1, 1)
                       + segment("W1", "my_variant", "warm", "movie", 0.2, 0.1, 1, 1, 1))
    rows = table_rows(lift_table(frame, "synopsis", ["synopsis"]))
    assert rows["my_variant"][0] == "20.00% (+100.00%)"


def test_malformed_frames_raise():
    with pytest.raises(ValueError, match="duplicate"):
        table1_markdown(pd.concat([WARM, WARM.head(1)]))
    with pytest.raises(ValueError, match="lacks columns"):
        table1_markdown(WARM.drop(columns="evaluated_users"))


def test_summary_across_weeks():
    frame = long_frame(
        segment("W1", "synopsis", "warm", "movie", 0.02, 0.1, 100, 40, 10)
        + segment("W2", "synopsis", "warm", "movie", 0.04, 0.3, 200, 60, 10)
        + segment("W1", "synopsis", "warm", "tv", float("nan"), float("nan"), 0, 0, 0)
    )
    summary = summary_across_weeks(frame).set_index(["category", "metric"])
    cov = summary.loc[("movie", "coverage")]
    assert (cov["mean"], cov["min"], cov["max"], cov["n_weeks"]) == (150, 100, 200, 2)
    assert cov["std"] == pytest.approx(math.sqrt(5000))
    assert summary.loc[("tv", "precision"), "n_weeks"] == 0
    assert math.isnan(summary.loc[("tv", "precision"), "mean"])
    markdown = summary_markdown(summary_across_weeks(frame))
    assert "| synopsis | warm | movie | precision | 3.000% |" in markdown
    assert "| synopsis | warm | tv | coverage | n/a | n/a | n/a | n/a | 0 |" in markdown


def test_spread_lists_each_variant_once_with_mean_and_std_across_weeks_baselines_first():
    frame = long_frame(
        segment("W1", "categorical", "warm", "movie", 0.02, 0.1, 100, 40, 10)
        + segment("W2", "categorical", "warm", "movie", 0.04, 0.3, 200, 60, 10)
        + segment("W1", "categorical", "cold", "movie", 0.10, 0.5, 5, 3, 4)
        + segment("W2", "categorical", "cold", "movie", float("nan"), float("nan"), 0, 0, 0)
        + segment("W1", "random", "warm", "movie", 0.01, 0.05, 300, 50, 10)
        + segment("W1", "random", "cold", "movie", 0.05, 0.2, 6, 3, 4)
    )
    lines = spread_markdown(frame).splitlines()
    assert lines[0] == ("| variant | warm P (movie) | warm R (movie) | cold P (movie) | cold R (movie) "
                        "| weeks (warm / cold) |")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| random", "| categorical"]
    # warm P of categorical: mean 3 %, std of (2 %, 4 %) = 1.41 points; cold: one contributing week, no std
    assert lines[3] == "| categorical | 3.00% ± 1.41 | 20.00% ± 14.14 | 10.00% | 50.00% | 2 / 1 |"


def test_attention_figure_is_a_valid_png_and_embeds_in_markdown():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet([4, 2, 1, 3], size=60)
    is_tv = np.arange(60) % 3 == 0
    png = attention_figure(weights, ["ID", "categorical", "cover art", "synopsis"], is_tv)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.size[0] > image.size[1] > 100
    assert png == attention_figure(weights, ["ID", "categorical", "cover art", "synopsis"], is_tv)  # reproducible
    markdown = png_markdown(png, "attention [weights]")
    assert markdown.startswith("![attention (weights)](data:image/png;base64,")
    assert base64.b64decode(markdown[markdown.index(",") + 1 : -1]) == png


def test_attention_figure_with_no_tv_titles_and_bad_shapes():
    png = attention_figure(np.full((3, 2), 0.5), ["categorical", "synopsis"], np.zeros(3, dtype=bool))
    Image.open(io.BytesIO(png)).verify()
    with pytest.raises(ValueError):
        attention_figure(np.full((3, 2), 0.5), ["only one"], np.zeros(3, dtype=bool))
    with pytest.raises(ValueError):
        attention_figure(np.full((3, 2), 0.5), ["a", "b"], np.zeros(4, dtype=bool))


def test_attention_figure_panels_are_labelled_by_category_and_metadata_type():
    names = ["ID", "categorical", "cover art", "synopsis"]
    weights = np.random.default_rng(1).dirichlet([1, 1, 1, 1], size=10)
    fig = attention_figure_object(weights, names, np.arange(10) < 3)
    movies, tv = fig.axes
    assert movies.get_title() == "Movies (n = 7)" and tv.get_title() == "TV (n = 3)"
    for ax in (movies, tv):
        assert [t.get_text() for t in ax.get_xticklabels()] == names


def _tables(markdown):
    """The Markdown tables of an output, each as table_rows gives it."""
    return [table_rows(block) for block in markdown.split("\n\n") if block.startswith("| ")]


ORACLE_FRAME = long_frame(
    segment("W1", "random", "cold", "movie", 0.02, 0.10, 300, 3, 50)
    + segment("W1", "random", "cold", "tv", 0.05, 0.30, 60, 2, 20)
    + segment("W1", "attention_no_id", "cold", "movie", 0.04, 0.20, 100, 9, 50)
    + segment("W1", "attention_no_id", "cold", "tv", 0.06, 0.33, 30, 4, 20)
    + segment("W1", "oracle_metadata", "cold", "movie", 0.08, 0.40, 90, 12, 50)
    + segment("W1", "oracle_metadata", "cold", "tv", 0.12, 0.66, 25, 6, 20)
    + segment("W1", "oracle_all", "cold", "movie", 0.10, 0.50, 80, 14, 50)
    + segment("W1", "oracle_all", "cold", "tv", 0.15, 0.75, 20, 7, 20)
)


def test_table2_shows_the_oracle_rows_after_the_models_and_shares_of_the_metadata_ceiling():
    markdown = table2_markdown(ORACLE_FRAME)
    table, share = _tables(markdown)
    table.pop("Model")
    assert list(table)[-2:] == ["oracle (metadata)", "oracle (all factors)"]
    # The lift vs random is computed as for every model row.
    assert table["Att (w/o ID)"][0] == "4.00% (+100.00%)"
    assert table["oracle (metadata)"][0] == "8.00% (+300.00%)"
    assert "Share of oracle (metadata) P@6" in markdown
    assert share.pop("Model") == ["P@6 Movie", "P@6 TV", "R@6 Movie", "R@6 TV"]
    assert share["Random"] == ["25%", "42%", "25%", "45%"]
    assert share["Att (w/o ID)"] == ["50%", "50%", "50%", "50%"]
    assert share["oracle (metadata)"] == ["100%"] * 4
    assert share["oracle (all factors)"] == ["125%", "125%", "125%", "114%"]
    assert "Synopsis" not in share  # a listed variant that did not run has no share row


def test_without_oracle_rows_table2_has_neither_oracle_rows_nor_shares():
    frame = ORACLE_FRAME[~ORACLE_FRAME["variant"].str.startswith("oracle")]
    markdown = table2_markdown(frame)
    assert "oracle" not in markdown and len(_tables(markdown)) == 1
    # Table 1 never shows the oracles: they are evaluated on cold-start titles only.
    assert "oracle" not in table1_markdown(ORACLE_FRAME)
