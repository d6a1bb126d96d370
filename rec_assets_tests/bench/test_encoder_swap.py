"""``bench/encoder_swap.py``: a tower retrained on another synopsis encoder's vectors, paired against the week's own
on the same users, on the session's materialised tiny week."""

import json

from rec_assets.bench.encoder_swap import SEGMENTS, main
from rec_assets.defs.partitions import SCORING_WEEKS


def test_each_segment_and_metric_pairs_the_swapped_tower_with_the_weeks_own(materialised, rec_home, tmp_path, capsys):
    assert all(result.success for result in materialised)
    week = SCORING_WEEKS.get_last_partition_key()
    out = tmp_path / "swap.json"
    main(["--home", str(rec_home), "--week", week, "--encoder", "word2vec", "--variants", "attention_no_id",
          "--epochs", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report == json.loads(capsys.readouterr().out)
    assert report["scoring_week"] == week and report["own"].endswith("+glove50")
    assert report["embedding"]["encoder"] == "word2vec"
    rows = report["rows"]
    assert {(r["candidate_set"], r["category"], r["metric"]) for r in rows} == {
        (s, c, m) for s, c in SEGMENTS for m in ("p@6", "r@6")}
    for row in rows:
        assert abs(row["difference"] - (row["word2vec"] - row["own"])) < 0.02  # the pooled means, rounded
        assert row["ci_low"] <= row["difference"] <= row["ci_high"] or row["n_users"] < 2
