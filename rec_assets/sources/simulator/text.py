"""Titles' names and synopses, written from the synopsis part of their hidden latent vector.

Each synopsis latent dimension k owns a pair of word banks (``WORD_BANKS[k]``: positive pole, negative pole). Every
slot of a sentence template picks a bank with probability growing with |latent_k| and the pole from its sign (with
some flips, so that the text is a noisy view), then a word from it. A word2vec model trained on the synopses sees
words of the same bank co-occur, and a TF-IDF-weighted sum of their vectors recovers the latent part.
"""

from __future__ import annotations

import numpy as np

from rec_assets.sources.simulator.vocab import GENERIC_ADJECTIVES, WORD_BANKS

_ADJ, _CHAR, _PLACE, _GOAL = range(4)

_MOVIE_KINDS = ("film", "story", "tale", "feature")
_TV_KINDS = ("series", "drama series", "limited series", "show")

# Sentence templates; {a_*} takes the article of the word that follows.
_OPENERS = (
    "{A_adj} {adj} {char} must {goal} in {a_place} {place}.",
    "When {a_char} {char} arrives at the {place}, {a_gen} {gen} {char2} is the only ally left.",
    "Set in {a_place} {place}, this {adj} {kind} follows {a_char} {char} who wants to {goal}.",
    "{Adj} secrets surface as {a_char} {char} and {a_char2} {char2} try to {goal}.",
)
_MIDDLES = (
    "Along the way, {a_adj} {adj} {char} becomes the key to everything.",
    "Nothing in the {adj} {place} is what it seems.",
    "To {goal}, they will have to trust {a_char} {char}.",
    "Every step leads deeper into the {place}.",
    "{A_adj} {adj} rivalry turns into something neither of them expected.",
)
_CLOSERS = (
    "Time is running out.",
    "Some doors, once opened, never close.",
    "Nobody leaves the {place} unchanged.",
    "What they find will change them forever.",
    "The {adj} truth is closer than they think.",
)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class SynopsisWriter:
    """Writes one synopsis per title from its synopsis latent (rows of ``latent``), deterministically from ``rng``."""

    def __init__(self, rng: np.random.Generator, sharpness: float = 2.2, flip_share: float = 0.12) -> None:
        self._rng = rng
        self._sharpness = sharpness
        self._flip_share = flip_share

    def _word(self, latent: np.ndarray, part: int) -> str:
        rng = self._rng
        weight = np.exp(self._sharpness * np.abs(latent))
        dim = int(rng.choice(len(latent), p=weight / weight.sum()))
        positive = latent[dim] >= 0
        if rng.random() < self._flip_share:
            positive = not positive
        bank = WORD_BANKS[dim][0 if positive else 1][part]
        return bank[int(rng.integers(len(bank)))]

    def _fill(self, template: str, latent: np.ndarray, kind: str) -> str:
        values: dict[str, str] = {}
        for key, part in (("adj", _ADJ), ("char", _CHAR), ("char2", _CHAR), ("place", _PLACE), ("goal", _GOAL)):
            if "{" + key in template or "{a_" + key in template or "{A_" + key in template:
                values[key] = self._word(latent, part)
                values["a_" + key] = _article(values[key])
                values["A_" + key] = values["a_" + key].capitalize()
        if "{Adj}" in template:
            values["Adj"] = values.get("adj", self._word(latent, _ADJ)).capitalize()
        values["gen"] = GENERIC_ADJECTIVES[int(self._rng.integers(len(GENERIC_ADJECTIVES)))]
        values["a_gen"] = _article(values["gen"])
        values["kind"] = kind
        return template.format(**values)

    def synopsis(self, latent: np.ndarray, is_tv: bool) -> str:
        rng = self._rng
        kinds = _TV_KINDS if is_tv else _MOVIE_KINDS
        kind = kinds[int(rng.integers(len(kinds)))]
        n_sentences = int(rng.integers(2, 5))
        parts = [self._fill(_OPENERS[int(rng.integers(len(_OPENERS)))], latent, kind)]
        middles = rng.permutation(len(_MIDDLES))[: max(0, n_sentences - 2)]
        parts += [self._fill(_MIDDLES[int(m)], latent, kind) for m in middles]
        parts.append(self._fill(_CLOSERS[int(rng.integers(len(_CLOSERS)))], latent, kind))
        return " ".join(parts)

    def title(self, latent: np.ndarray, is_tv: bool) -> str:
        rng = self._rng
        noun = self._word(latent, _PLACE if rng.random() < 0.5 else _CHAR)
        adjective = self._word(latent, _ADJ)
        shapes = (f"The {adjective.title()} {noun.title()}", noun.title(), f"{adjective.title()} {noun.title()}",
                  f"The Last {noun.title()}")
        name = shapes[int(rng.integers(len(shapes)))]
        return f"{name}: The Series" if is_tv and rng.random() < 0.15 else name
