"""The scoring benchmark runs end to end at a toy size and reports consistent figures."""

import pytest

from rec_assets.bench.scoring_bench import bench_top_k


def test_bench_reports_throughput_of_both_sides():
    result = bench_top_k(n_users=300, n_items=500, dim=16, chunk_users=128, watched_per_user=5)
    assert result["exclusions"] > 0
    assert result["top_k_s"] > 0 and result["bare_s"] > 0
    assert result["top_k_pairs_per_s"] * result["top_k_s"] == pytest.approx(300 * 500)
    assert result["bare_pairs_per_s"] * result["bare_s"] == pytest.approx(300 * 500)
    assert result["overhead"] == pytest.approx(result["top_k_s"] / result["bare_s"])
