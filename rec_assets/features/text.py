"""The one tokenizer shared by word2vec training and TF-IDF, so both see exactly the same words."""

from __future__ import annotations

import re

# Runs of Unicode letters/digits (underscore excluded); apostrophes split words ("hero's" -> "hero", "s"),
# the same on both sides, which is all that matters for the weighted sum.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str | None) -> list[str]:
    """Lower-cased word tokens of ``text``; ``None`` or blank text gives ``[]``."""
    if not text:
        return []
    return _WORD.findall(text.lower())
