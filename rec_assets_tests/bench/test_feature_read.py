"""``bench/feature_read.py``: on the session's materialised tiny week, how much of the hidden title factors the
features hold, as the R² of a ridge read on the week's cold titles."""

import json
import math

import pytest

from rec_assets.bench.feature_read import TFIDF, main
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.evaluation.oracle import METADATA_PARTS


def test_the_report_gives_each_metadata_parts_cold_r2_and_the_synopsis_part_per_encoder(materialised, rec_home,
                                                                                         capsys):
    assert all(result.success for result in materialised)
    main(["--home", str(rec_home), "--encoders", f"word2vec,{TFIDF}"])
    report = json.loads(capsys.readouterr().out)
    assert report["scoring_week"] == SCORING_WEEKS.get_last_partition_key()
    assert 0 < report["cold_titles"] < report["titles"]
    assert set(report["parts"]) == set(METADATA_PARTS)
    assert set(report["synopsis_by_encoder"]) == {"word2vec", TFIDF}
    # R² is at most 1 (a perfect read); on the tiny week's 400 titles it may be below 0 (a read worse than the mean)
    values = [*report["parts"].values(), *report["synopsis_by_encoder"].values()]
    assert all(math.isfinite(value) and value <= 1 for value in values)


def test_a_week_without_features_is_refused_with_what_to_run(materialised, rec_home):
    with pytest.raises(SystemExit, match="has no feature artifacts.*run make run first"):
        main(["--home", str(rec_home), "--week", "1999-01-04"])
