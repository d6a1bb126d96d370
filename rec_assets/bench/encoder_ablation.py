"""Encoder ablation of ``make compare --encoder-ablation``: each single-modality variant on each encoder's vectors.

For a week of the run, :func:`reembed` embeds the week's catalogue with another encoder (``embed_synopses``, or
``embed_cover_art`` through the cover-art feature asset's cache, whose key names the encoder), :func:`swapped`
puts that matrix into both phases' ``ItemFeatures``, and :class:`EncoderAblation` trains the variant (``synopsis``
or ``cover_art``, the ``two_tower:<variant>`` peer: ``model.train.train_variant``) and evaluates it as ``compare``
does on the weekly cold protocol of the last week and the LightFM paper's protocol (every seed of the run). Records
carry the week's ``<cover art>+<synopsis>`` label with the swapped half replaced. The week's own encoder is not
re-embedded, and its rows are the run's own rows of that variant where the run has them. Pure code.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rec_assets.evaluation.metrics import DEFAULT_TOP_K
from rec_assets.model.inputs import WeekData
from rec_assets.features.cover_art import CoverArtConfig, embed_cover_art
from rec_assets.features.cover_art_backbone import EFFICIENTNET_LITE0, RANDOM_SUFFIX
from rec_assets.features.synopsis import SYNOPSIS_ENCODERS, SynopsisConfig, embed_synopses

__all__ = ["ABLATION_ENCODERS", "EncoderAblation", "ablation_markdown", "parse_encoders", "reembed", "swapped"]

#: variant (= the modality it reads) -> the encoders it is measured with. Random cover-art weights: the default
#: architecture's, so the row isolates what ImageNet training adds (and at 128 px it is as fast as ResNet-34's).
ABLATION_ENCODERS: dict[str, tuple[str, ...]] = {
    "synopsis": SYNOPSIS_ENCODERS,
    "cover_art": (EFFICIENTNET_LITE0, EFFICIENTNET_LITE0 + RANDOM_SUFFIX),
}
#: the half of a ``<cover art>+<synopsis>`` label each variant's encoder takes
_HALF = {"cover_art": 0, "synopsis": 1}


def parse_encoders(text: str) -> dict[str, list[str]]:
    """``all`` or a comma-separated list of encoder names -> variant -> its encoders (in :data:`ABLATION_ENCODERS`
    order); raises ValueError on an unknown name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or names == ["all"]:
        return {variant: list(encoders) for variant, encoders in ABLATION_ENCODERS.items()}
    known = {e for encoders in ABLATION_ENCODERS.values() for e in encoders}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown ablation encoders {unknown}; known: {', '.join(sorted(known))} or all")
    chosen = {v: [e for e in encoders if e in names] for v, encoders in ABLATION_ENCODERS.items()}
    return {v: encoders for v, encoders in chosen.items() if encoders}


def with_encoder(label: str, variant: str, encoder: str) -> str:
    """``label`` (``<cover art>+<synopsis>``) with ``variant``'s half replaced by ``encoder``."""
    halves = label.split("+") if label.count("+") == 1 else ["unknown", "unknown"]
    halves[_HALF[variant]] = encoder
    return "+".join(halves)


def reembed(variant: str, encoder: str, catalogue: pd.DataFrame, cover_art_cache: str | Path | None = None,
            ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(vectors, missing, facts) of the catalogue's titles (rows in its order) under ``encoder``, with the feature
    assets' defaults; facts: encoder, width, missing, seconds and, for cover art, computed / cached images."""
    started = time.perf_counter()
    if variant == "synopsis":
        result = embed_synopses(catalogue, SynopsisConfig(encoder=encoder))
        facts: dict[str, Any] = {}
    elif variant == "cover_art":
        result = embed_cover_art(catalogue, CoverArtConfig(encoder=encoder, num_workers=1), cache_dir=cover_art_cache)
        facts = {"images_computed": result.n_computed, "images_from_cache": result.n_cached,
                 "images_per_second": result.stats.get("images_per_second")}
    else:
        raise ValueError(f"no encoder ablation for variant {variant!r}; known: {', '.join(ABLATION_ENCODERS)}")
    if not np.array_equal(result.title_ids, catalogue["title_id"].to_numpy(dtype=np.int64)):
        raise ValueError("re-embedded rows do not follow the catalogue")
    return result.embeddings, result.missing, {
        "encoder": result.encoder, "width": int(result.embeddings.shape[1]), "missing": int(result.missing.sum()),
        "embed_seconds": round(time.perf_counter() - started, 2), **facts}


def swapped(week: WeekData, variant: str, vectors: np.ndarray, missing: np.ndarray) -> WeekData:
    """``week`` with the item matrix ``variant`` reads (and its missing flags) replaced; nothing else changes."""
    if vectors.shape[0] != week.items.n_titles:
        raise ValueError(f"{vectors.shape[0]} vectors for {week.items.n_titles} titles")
    items = dataclasses.replace(week.items, **{variant: np.asarray(vectors, dtype=np.float32),
                                               f"{variant}_missing": np.asarray(missing, dtype=bool)})
    items.validate()
    return dataclasses.replace(week, items=items)


class EncoderAblation:
    """Collects the ablation's per-user values over the run's weeks; :meth:`records` turns them into records."""

    def __init__(self, encoders: Mapping[str, Sequence[str]], *, cover_art_cache: str | Path | None,
                 training: Any, threads: int, seeds: Sequence[int], share: float, k: int) -> None:
        self.encoders = {v: list(e) for v, e in encoders.items()}
        self.cover_art_cache, self.training, self.threads = cover_art_cache, training, threads
        self.seeds, self.share, self.k = list(seeds), share, k
        self.weekly: list[pd.DataFrame] = []
        self.lightfm_users: list[pd.DataFrame] = []
        self.lightfm_means: list[pd.DataFrame] = []
        self.info: list[dict] = []
        self.own: dict[str, str] = {}  # variant -> label of the rows the run itself computed (taken from the run)

    def run_week(self, train: WeekData, score: WeekData, *, week: str, label: str, own: Mapping[str, str],
                 cold: bool, lightfm: bool, computed: set[tuple[str, str]], popularity: Any = None) -> None:
        """Ablate one week. ``label``: the week's ``<cover art>+<synopsis>``; ``own``: variant -> the week's own
        encoder; ``cold`` / ``lightfm``: which protocols this week takes; ``computed``: (variant, protocol) pairs
        the run evaluates itself on the week's own features, not repeated here."""
        from rec_assets.bench.compare.protocols import compare_lightfm_holdout, compare_week
        from rec_assets.peers.adapters import TwoTowerConfig

        for variant, encoders in self.encoders.items():
            peer = f"two_tower:{variant}"
            configs = {peer: TwoTowerConfig(variant, self.training, self.threads)}
            for encoder in encoders:
                is_own = encoder == own.get(variant)
                todo = [p for p, wanted in (("weekly_cold", cold), ("lightfm_holdout", lightfm))
                        if wanted and not (is_own and (variant, p) in computed)]
                if is_own and len(todo) < int(cold) + int(lightfm):
                    self.own[variant] = label
                if not todo:
                    continue
                started = time.perf_counter()
                record_label = with_encoder(label, variant, encoder)
                info = {"scoring_week": week, "variant": variant, "encoder": encoder, "encoders": record_label,
                        "protocols": todo}
                if is_own:
                    week_train, week_score = train, score
                    info.update(encoder=encoder, width=int(getattr(train.items, variant).shape[1]),
                                missing=int(getattr(train.items, f"{variant}_missing").sum()), embed_seconds=0.0,
                                reembedded=False)
                else:
                    vectors, missing, facts = reembed(variant, encoder, train.catalogue, self.cover_art_cache)
                    week_train, week_score = (swapped(w, variant, vectors, missing) for w in (train, score))
                    info.update(facts, reembedded=True)
                    record_label = with_encoder(label, variant, facts["encoder"])
                    info["encoders"] = record_label
                if "weekly_cold" in todo:
                    users: list[pd.DataFrame] = []
                    compare_week(week_train, week_score, peers=[peer], configs=configs, protocols=["standard"],
                                 k=self.k, baselines=False, per_user=users)
                    self.weekly += [u[u["candidate_set"] == "cold"].assign(scoring_week=week, encoders=record_label)
                                    for u in users]
                if "lightfm_holdout" in todo:
                    means, values = compare_lightfm_holdout(week_train, week_score, systems=[peer], configs=configs,
                                                            popularity=popularity, seeds=self.seeds, share=self.share)
                    self.lightfm_means.append(means[means["system"] == peer].assign(scoring_week=week,
                                                                                    encoders=record_label))
                    if len(values):
                        self.lightfm_users.append(values[values["system"] == peer].assign(scoring_week=week,
                                                                                          encoders=record_label))
                info["seconds"] = round(time.perf_counter() - started, 2)
                self.info.append(info)
                print(f"encoder ablation {week}: {variant} on {record_label} ({', '.join(todo)}) in "
                      f"{info['seconds']:.1f} s", flush=True)

    def _long(self, run_long: pd.DataFrame, last_week: str) -> pd.DataFrame:
        """Per-user values of every ablation row, with an ``encoders`` column: the ablation's own, and the run's
        rows of a variant on the week's own encoder (weekly cold of the last week, the LightFM protocol's seeds of
        the ablation)."""
        from rec_assets.bench.compare.records import per_user_long

        parts = []
        for label in sorted({f["encoders"].iloc[0] for f in [*self.weekly, *self.lightfm_users] if len(f)}):
            weekly = [f for f in self.weekly if len(f) and f["encoders"].iloc[0] == label]
            lightfm = [f for f in self.lightfm_users if len(f) and f["encoders"].iloc[0] == label]
            long = per_user_long(pd.concat(weekly, ignore_index=True) if weekly else None,
                                 pd.concat(lightfm, ignore_index=True) if lightfm else None, self.k)
            parts.append(long.assign(encoders=label))
        for variant, label in self.own.items():
            mine = run_long[(run_long["system"] == variant) & (
                ((run_long["protocol"] == "weekly_cold") & (run_long["scoring_week"] == last_week))
                | ((run_long["protocol"] == "lightfm_holdout") & run_long["seed"].isin(self.seeds)))]
            parts.append(mine.assign(encoders=label))
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def records(self, run_long: pd.DataFrame, *, dataset: str, last_week: str, n_resamples: int, seed: int,
                ) -> tuple[list[dict], list[dict], list[dict]]:
        """(records for cold_start.json: the rows this ablation computed; the table's records: those and the run's
        own rows of each variant; paired comparisons of each encoder against the week's own, per variant)."""
        from rec_assets.bench.compare.records import cold_start_records, comparisons

        long = self._long(run_long, last_week)
        table = []
        for label, g in (long.groupby("encoders") if len(long) else []):
            means = [m for m in self.lightfm_means if len(m) and m["encoders"].iloc[0] == label]
            means = pd.concat(means, ignore_index=True).drop(columns="encoders") if means else None
            table += cold_start_records(g.drop(columns="encoders"), None, means, dataset=dataset, encoders=label,
                                        k=self.k, n_resamples=n_resamples, seed=seed)
        done = {(i["variant"], i["encoders"], p) for i in self.info for p in i["protocols"]}
        computed = [r for r in table if (r["system"], r["encoders"], r["protocol"]) in done]
        compared = []
        if len(long):
            tagged = long.assign(system=long["system"] + "@" + long["encoders"])
            for variant, label in self._own_labels().items():
                others = sorted({s for s in tagged["system"] if s.startswith(f"{variant}@")} - {f"{variant}@{label}"})
                compared += comparisons(tagged, others, self.k, opponents=[f"{variant}@{label}"],
                                        n_resamples=n_resamples, seed=seed)
        return computed, table, compared

    def _own_labels(self) -> dict[str, str]:
        """variant -> the label of its rows on the week's own encoder (run's or this ablation's)."""
        labels = dict(self.own)
        for info in self.info:
            if not info.get("reembedded"):
                labels.setdefault(info["variant"], info["encoders"])
        return labels


def _interval(record: Mapping | None, percent: bool = True) -> str:
    from rec_assets.bench.compare.report import interval_cell

    if record is None:
        return ""
    return interval_cell(record["value"], record.get("ci_low"), record.get("ci_high"), percent)


def ablation_markdown(table: Sequence[dict], compared: Sequence[dict], info: Sequence[dict],
                     k: int = DEFAULT_TOP_K) -> str:
    """The "Encoders, one modality at a time" section: per variant, encoder and category the weekly cold P/R@k of
    the last week and the LightFM protocol's AUC, P@6, R@20 [95% intervals], then the paired comparisons."""
    if not table:
        return ""
    columns = [("weekly_cold", f"p@{k}"), ("weekly_cold", f"r@{k}"), ("lightfm_holdout", "auc"),
               ("lightfm_holdout", "p@6"), ("lightfm_holdout", "r@20")]
    by_key = {(r["system"], r["encoders"], r["category"], r["protocol"], r["metric"]): r for r in table}
    rows = sorted({(r["system"], r["encoders"], r["category"]) for r in table},
                  key=lambda t: (list(ABLATION_ENCODERS).index(t[0]) if t[0] in ABLATION_ENCODERS else 99,
                                 {"movie": 0, "tv": 1, "all": 2}.get(t[2], 9), t[1]))
    header = ["variant", "encoders", "category", f"cold P@{k}", f"cold R@{k}", "LightFM-protocol AUC", "P@6", "R@20",
              "users (cold / LightFM)"]
    lines = ["## Encoders, one modality at a time", "",
             "The single-modality variants, each trained on one encoder's vectors of the week's titles (the rest of "
             "the features unchanged): weekly cold-start candidates of the last week, and the LightFM paper's protocol "
             "over the run's seeds; value [95% bootstrap interval over users]. `encoders`: "
             "`<cover art>+<synopsis>` of the features the variant was given (it reads only its own half).", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for system, label, category in rows:
        cells = [_interval(by_key.get((system, label, category, p, m)), m != "auc") for p, m in columns]
        users = [str((by_key.get((system, label, category, p, m)) or {}).get("n_users", "")) for p, m in
                 (columns[0], columns[2])]
        lines.append(f"| {system} | {label} | {category} | " + " | ".join(cells) + f" | {' / '.join(users)} |")
    if compared:
        lines += ["", "Paired on the same users (difference = row's encoder - the week's own encoder):", "",
                  "| variant | encoders | vs | protocol | category | metric | difference | users | verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for c in compared:
            variant, label = c["variant"].split("@", 1)
            difference = _interval({"value": c["difference"], "ci_low": c["ci_low"], "ci_high": c["ci_high"]},
                                   c["metric"] != "auc")
            lines.append(f"| {variant} | {label} | {c['opponent'].split('@', 1)[1]} | {c['protocol']} | "
                         f"{c['category']} | {c['metric']} | {difference} | {c['n_users']} | "
                         f"{c['verdict'].replace(variant + '@', '')} |")
    if info:
        lines += ["", "| week | variant | encoder | width | missing | re-embedded | embed s | total s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for i in info:
            lines.append(f"| {i['scoring_week']} | {i['variant']} | {i['encoder']} | {i['width']} | {i['missing']} | "
                         f"{'yes' if i.get('reembedded') else 'no (the week’s own)'} | {i['embed_seconds']:.1f} | "
                         f"{i['seconds']:.1f} |")
    return "\n".join(lines) + "\n"
