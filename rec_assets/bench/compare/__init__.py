"""``make compare``: the two-tower variants against peers and baselines, per week and pooled over weeks.

``protocols`` evaluates every system on one week, ``records`` pools the per-user values into ``cold_start.json``
records and paired comparisons, ``report`` writes compare.md, ``inputs`` reads a platform ``REC_HOME``, and
``cli`` (``python -m rec_assets.bench.compare``) runs them over the materialised weeks.
"""
