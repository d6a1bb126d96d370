"""The embedded catalog simulator: determinism, layout conformance, caching, atomicity, span, cold start, signal."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rec_assets.sources.layout import (
    CATEGORIES,
    EVENT_COLUMNS,
    EVENTS_FILE,
    LIST_FIELDS,
    MANIFEST_FILE,
    TITLE_FIELDS,
    TITLES_FILE,
    USERS_FILE,
)
from rec_assets.sources.simulator import (
    ORACLE_FILE,
    PRESETS,
    SimulatorConfig,
    config_for,
    ensure_generated,
    generate,
    generate_hidden,
    generator,
    simulate,
    simulator_span,
)
from rec_assets.sources.simulator.vocab import MATURITY_RATINGS, WORD_BANKS

REPO_ROOT = Path(__file__).resolve().parents[3]
# A config small enough to generate in a fraction of a second, for the caching and atomicity tests.
MINI = dataclasses.replace(config_for("tiny"), preset="mini", n_users=40, n_titles=60, n_weeks=10,
                           target_events=800, n_people=200)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _titles(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / TITLES_FILE).read_text(encoding="utf-8").splitlines()]


def _events(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open(root / EVENTS_FILE, newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == EVENT_COLUMNS
    users = np.array([int(r[0]) for r in rows[1:]])
    titles = np.array([int(r[1]) for r in rows[1:]])
    seconds = np.array([int(datetime.strptime(r[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
                        for r in rows[1:]])
    return users, titles, seconds


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "tiny"
    generate(config_for("tiny"), out)
    return out


@pytest.fixture(scope="module")
def default_simulation():
    return simulate(config_for("default"))


# --- config ------------------------------------------------------------------------------------------------------

def test_presets_and_config_for():
    assert set(PRESETS) >= {"tiny", "default", "large"}
    large = PRESETS["large"]
    assert large.n_users >= 100_000 and large.n_titles >= 20_000 and large.target_events >= 10_000_000
    assert config_for("default", seed=7).seed == 7
    with pytest.raises(ValueError, match="unknown simulator preset 'huge'.*default"):
        config_for("huge")
    with pytest.raises(ValueError, match="Monday"):
        SimulatorConfig(first_day=date(2024, 9, 3))
    with pytest.raises(ValueError, match="drop_titles"):
        SimulatorConfig(n_titles=10, drop_titles=11)
    with pytest.raises(ValueError, match="drop_week"):
        SimulatorConfig(n_weeks=10, drop_week=10)
    assert SimulatorConfig(n_weeks=10, drop_week=-1).drop_week_index == 9


def test_config_hash_is_stable_and_sensitive():
    assert config_for("tiny").config_hash() == config_for("tiny").config_hash()
    assert config_for("tiny").config_hash() != config_for("tiny", seed=1).config_hash()


def test_span_covers_whole_weeks_without_generating():
    first, end = simulator_span(config_for("default"))
    assert first == date(2024, 9, 2) and first.weekday() == 0 and end.weekday() == 0
    assert (end - first).days == 7 * 114


# --- determinism -------------------------------------------------------------------------------------------------

def test_same_seed_gives_the_same_bytes_in_another_process(tiny_dir, tmp_path):
    other = tmp_path / "again"
    # Another interpreter with another hash seed: output must not depend on set or hash order.
    code = ("import sys; from pathlib import Path; from rec_assets.sources.simulator import generate, config_for; "
            "generate(config_for('tiny'), Path(sys.argv[1]))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(other)], check=True, cwd=REPO_ROOT, env=env)
    first, second = _files(tiny_dir), _files(other)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_different_seed_differs(tiny_dir, tmp_path):
    manifest = generate(config_for("tiny", seed=1), tmp_path / "seed1")
    assert manifest["seed"] == 1
    for name in (TITLES_FILE, USERS_FILE, EVENTS_FILE, "images/1.jpg"):
        assert (tiny_dir / name).read_bytes() != (tmp_path / "seed1" / name).read_bytes(), name


# --- layout conformance ------------------------------------------------------------------------------------------

def test_titles_follow_the_layout(tiny_dir):
    config = config_for("tiny")
    titles = _titles(tiny_dir)
    assert len(titles) == config.n_titles
    assert [t["title_id"] for t in titles] == list(range(1, config.n_titles + 1))
    for t in titles:
        assert tuple(t) == TITLE_FIELDS
        assert t["category"] in CATEGORIES
        assert all(isinstance(t[f], list) and all(isinstance(x, str) for x in t[f]) for f in LIST_FIELDS)
        assert t["genres"] and t["subgenres"] and t["actors"] and t["directors"]
        assert t["maturity_rating"] in MATURITY_RATINGS
        assert isinstance(t["release_year"], int) and 1930 <= t["release_year"] <= 2027
        assert date.fromisoformat(t["acquisition_date"]) >= config.first_day
        assert t["release_year"] <= date.fromisoformat(t["acquisition_date"]).year
    tv_share = sum(t["category"] == "tv" for t in titles) / len(titles)
    assert 0.14 <= tv_share <= 0.26  # about 4 movies to 1 series
    missing_synopsis = sum(t["synopsis"] is None for t in titles) / len(titles)
    missing_image = sum(t["image"] is None for t in titles) / len(titles)
    assert 0.0 < missing_synopsis <= 0.06 and 0.0 < missing_image <= 0.06
    for t in titles:
        if t["synopsis"] is not None:
            assert 2 <= len(re.findall(r"[.!?](?:\s|$)", t["synopsis"])) <= 4
    # Images: one JPEG of the configured size per non-null image, none for the others.
    on_disk = {p.name for p in (tiny_dir / "images").iterdir()}
    assert on_disk == {Path(t["image"]).name for t in titles if t["image"] is not None}
    first_image = next(t["image"] for t in titles if t["image"] is not None)
    with Image.open(tiny_dir / first_image) as image:
        assert image.format == "JPEG" and image.size == (config.image_width, config.image_height)


def test_initial_library_then_weekly_arrivals(tiny_dir):
    config = config_for("tiny")
    acquired = [date.fromisoformat(t["acquisition_date"]) for t in _titles(tiny_dir)]
    initial = sum(d == config.first_day for d in acquired)
    assert initial == round(config.n_titles * config.initial_library_share)
    weeks = Counter((d - config.first_day).days // 7 for d in acquired if d != config.first_day)
    # Arrivals grow: the last ten weeks bring more than the first ten.
    assert sum(weeks[w] for w in range(config.n_weeks - 10, config.n_weeks)) > 2 * sum(weeks[w] for w in range(1, 11))


def test_users_and_events_follow_the_layout(tiny_dir):
    config = config_for("tiny")
    with open(tiny_dir / USERS_FILE, newline="") as handle:
        users = list(csv.DictReader(handle))
    assert list(users[0]) == ["user_id", "country", "age_band", "plan", "device"]
    assert [int(u["user_id"]) for u in users] == list(range(1, config.n_users + 1))
    user_ids, title_ids, seconds = _events(tiny_dir)
    assert 0.8 * config.target_events <= len(user_ids) <= 1.1 * config.target_events
    assert set(user_ids) <= set(range(1, config.n_users + 1))
    # No rewatches, time order, and second-resolution timestamps inside the span.
    assert len(set(zip(user_ids.tolist(), title_ids.tolist()))) == len(user_ids)
    assert np.all(np.diff(seconds) >= 0)
    first, end = simulator_span(config)
    assert seconds.min() >= _unix(first) and seconds.max() < _unix(end)
    # Never before the title was acquired.
    acquired = {t["title_id"]: _unix(date.fromisoformat(t["acquisition_date"])) for t in _titles(tiny_dir)}
    assert all(s >= acquired[t] for t, s in zip(title_ids.tolist(), seconds.tolist()))


def test_manifest_matches_span_and_files(tiny_dir):
    config = config_for("tiny")
    manifest = json.loads((tiny_dir / MANIFEST_FILE).read_text())
    first, end = simulator_span(config)
    assert manifest["first_event_day"] == first.isoformat()
    assert manifest["end_day_exclusive"] == end.isoformat()
    assert manifest["last_event_day"] == (end - timedelta(days=1)).isoformat()
    assert manifest["config_hash"] == config.config_hash() and manifest["config"] == config.to_json_dict()
    assert manifest["counts"]["titles"] == config.n_titles
    assert manifest["counts"]["events"] == len(_events(tiny_dir)[0])
    # Events fill the span: something is watched in its first and in its last week.
    seconds = _events(tiny_dir)[2]
    assert seconds.min() < _unix(first + timedelta(days=7)) and seconds.max() >= _unix(end - timedelta(days=7))
    # The hidden factors stay out of the layout's files: only the oracle's own file holds them.
    assert "latent" not in json.dumps(manifest)
    assert {p.name for p in tiny_dir.iterdir()} == {TITLES_FILE, USERS_FILE, EVENTS_FILE, MANIFEST_FILE, "images",
                                                    ORACLE_FILE}
    assert set(manifest["sha256"]) == {TITLES_FILE, USERS_FILE, EVENTS_FILE, "images", ORACLE_FILE}


def test_the_oracle_file_holds_the_hidden_factors(tiny_dir):
    config = config_for("tiny")
    hidden = generate_hidden(config)
    with np.load(tiny_dir / ORACLE_FILE, allow_pickle=False) as stored:
        assert np.array_equal(stored["title_id"], np.arange(1, config.n_titles + 1))
        assert np.array_equal(stored["user_id"], np.arange(1, config.n_users + 1))
        assert np.array_equal(stored["title_latent"], hidden.title_latent)
        assert np.array_equal(stored["user_taste"], hidden.user_taste)
        assert np.array_equal(stored["affinity_weights"], hidden.affinity_weights)
        assert dict(zip(stored["part_names"].tolist(), map(tuple, stored["part_bounds"].tolist()))) \
            == hidden.latent_parts
        assert np.array_equal(stored["title_log_popularity"], hidden.title_log_popularity)
        assert np.array_equal(stored["title_novelty_boost"], hidden.title_novelty_boost)
        assert np.array_equal(stored["title_acquisition_day"] // 7, hidden.title_acquisition_week)
        assert str(stored["first_day"]) == config.first_day.isoformat()


def test_default_catalogue_vocabularies(default_simulation):
    world = default_simulation.world
    titles = world.titles
    genres = {g for gs in titles.genres for g in gs}
    subgenres = {s for ss in titles.subgenres for s in ss}
    assert len(genres) == 27 and len(subgenres) >= 100
    # Every subgenre sits under one of the title's genres.
    for gs, ss in zip(titles.genres, titles.subgenres):
        assert {int(world.vocab.subgenre_genre[s]) for s in ss} <= set(gs)
    assert len(world.people.names) >= 5_000 and len(set(world.people.names)) == len(world.people.names)
    assert len({p for ps in titles.actors + titles.directors for p in ps}) >= 2_000
    assert len(set(titles.maturity.tolist())) == 17
    countries = Counter(titles.country.tolist())
    assert len(countries) >= 50
    assert countries.most_common(1)[0][0] == world.vocab.countries.index("US")
    assert 0.25 <= countries.most_common(1)[0][1] / len(titles.country) <= 0.5
    tv = titles.category.mean()
    assert 0.17 <= tv <= 0.23
    # Cast fame is long-tailed: the busiest actor is cast far more often than the median one.
    cast_counts = np.array(list(Counter(p for ps in titles.actors for p in ps).values()))
    assert cast_counts.max() >= 10 * np.median(cast_counts)
    years = titles.release_year
    assert years.min() < 1980 and years.max() >= 2025


def test_default_latest_week_gets_a_release_drop_the_size_of_the_papers_cold_set(default_simulation):
    """The last week (the one `make run` scores) holds >= 250 cold-start titles, movies and TV: watched in it, not
    in the 2 years + 14 days before; the rest of the catalogue stays mostly warm and long-tailed."""
    config = config_for("default")
    assert config.drop_titles > 0 and config.drop_week_index == config.n_weeks - 1
    events, titles = default_simulation.events, default_simulation.world.titles
    day = (events.timestamp - _unix(config.first_day)) // 86400
    scoring_day = 7 * (config.n_weeks - 1)
    history = np.unique(events.title[(day >= scoring_day - 744) & (day < scoring_day)])
    week = np.unique(events.title[day >= scoring_day])
    cold = np.setdiff1d(week, history)
    n_tv = int(titles.category[cold].sum())
    assert len(cold) >= 250, len(cold)
    assert n_tv >= 40 and len(cold) - n_tv >= 150, (len(cold) - n_tv, n_tv)
    # The drop lands on the week's Monday and is mostly back catalogue, promoted less than premieres.
    dropped = titles.novelty_boost == config.drop_novelty_boost
    assert dropped.sum() == config.drop_titles and np.all(titles.acquisition_day[dropped] == scoring_day)
    assert (titles.release_year[dropped] < 2025).mean() >= 0.8
    # Most titles are warm, and watches are long-tailed (the top tenth of titles take far more than a tenth).
    available_before = np.sum(titles.acquisition_day < scoring_day)
    assert len(history) >= 0.95 * available_before
    counts = np.sort(np.bincount(events.title, minlength=config.n_titles))[::-1]
    assert counts[: config.n_titles // 10].sum() >= 0.3 * counts.sum()
    # Cold titles do not swamp the week: warm titles still take a good share of its watches.
    assert np.isin(events.title[day >= scoring_day], cold).mean() <= 0.6


# --- caching and atomicity ---------------------------------------------------------------------------------------

def test_ensure_generated_caches(tmp_path, monkeypatch):
    out = ensure_generated(MINI, tmp_path)
    assert out.parent == tmp_path and out.name.startswith("mini-seed0-")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    def must_not_run(*args, **kwargs):
        raise AssertionError("ensure_generated regenerated a current directory")

    monkeypatch.setattr(generator, "generate", must_not_run)
    assert ensure_generated(MINI, tmp_path) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    monkeypatch.undo()

    # A manifest that does not match the config (e.g. an edited or stale directory) is regenerated.
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["config"]["n_users"] = 1
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert ensure_generated(MINI, tmp_path) == out
    assert json.loads((out / MANIFEST_FILE).read_text())["config"] == MINI.to_json_dict()
    # Another seed lives in another directory.
    assert ensure_generated(dataclasses.replace(MINI, seed=3), tmp_path) != out


def test_failure_mid_generation_leaves_nothing(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(generator, "_write_events", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(MINI, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    # An existing directory survives a failed regeneration untouched.
    generate(MINI, tmp_path / "out")
    before = _files(tmp_path / "out")
    monkeypatch.setattr(generator, "_write_events", crash)
    with pytest.raises(RuntimeError):
        generate(dataclasses.replace(MINI, seed=5), tmp_path / "out")
    assert _files(tmp_path / "out") == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- the properties that make the data worth learning ------------------------------------------------------------

def test_every_late_week_has_cold_start_titles_of_both_categories(default_simulation):
    """Scoring weeks (the last ten) each bring at least 30 titles first watched that week, movies and TV."""
    config = config_for("default")
    events, titles = default_simulation.events, default_simulation.world.titles
    week = (events.timestamp - _unix(config.first_day)) // (7 * 86400)
    first_watch_week = np.full(config.n_titles, np.iinfo(np.int64).max)
    np.minimum.at(first_watch_week, events.title, week)
    for w in range(config.n_weeks - 10, config.n_weeks):
        cold = np.flatnonzero(first_watch_week == w)
        n_tv = int(titles.category[cold].sum())
        assert len(cold) >= 30, (w, len(cold))
        assert n_tv >= 1 and len(cold) - n_tv >= 1, (w, n_tv)
    # Novelty: titles acquired in a late week are mostly first watched in that very week.
    acquired_late = np.flatnonzero(titles.acquisition_day // 7 >= config.n_weeks - 10)
    same_week = first_watch_week[acquired_late] == titles.acquisition_day[acquired_late] // 7
    assert same_week.mean() >= 0.8


def test_watch_choices_follow_hidden_affinity(tiny_dir):
    config = config_for("tiny")
    hidden = generate_hidden(config)
    user_ids, title_ids, seconds = _events(tiny_dir)
    users, watched = user_ids - 1, title_ids - 1
    week = (seconds - _unix(config.first_day)) // (7 * 86400)
    # Baseline: a random title among those available in the same week.
    rng = np.random.default_rng(0)
    available = np.searchsorted(hidden.title_acquisition_week, week, side="right")
    random_titles = (rng.random(len(week)) * available).astype(np.int64)
    watched_affinity = hidden.affinity(users, watched)
    random_affinity = hidden.affinity(users, random_titles)
    # Tiny users watch a quarter of the catalogue, so even their later, weaker choices count: a modest margin.
    assert watched_affinity.mean() - random_affinity.mean() > 0.3 * random_affinity.std()


def _cosine_gap(vectors: np.ndarray, groups: list[set[int]], rng) -> tuple[float, float]:
    """Mean cosine similarity of pairs sharing a group vs random pairs."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        for key in g:
            members.setdefault(key, []).append(i)
    pairs = [(a, b) for ids in members.values() if len(ids) > 1 for a, b in zip(ids[:-1], ids[1:])]
    a, b = np.array(pairs).T
    same = float(np.mean(np.sum(unit[a] * unit[b], axis=1)))
    r1, r2 = rng.integers(0, len(vectors), (2, 5_000))
    return same, float(np.mean(np.sum(unit[r1] * unit[r2], axis=1)))


def test_metadata_carries_the_latent_signal(tiny_dir):
    config = config_for("tiny")
    hidden = generate_hidden(config)
    titles = _titles(tiny_dir)
    rng = np.random.default_rng(0)
    parts = hidden.latent_parts
    categorical = hidden.title_latent[:, slice(*parts["categorical"])]
    # Titles sharing a top genre, or an actor, have closer categorical latents than random pairs.
    same, random = _cosine_gap(categorical, [{t["genres"][0]} for t in titles], rng)
    assert same > random + 0.3
    same, random = _cosine_gap(categorical, [set(t["actors"]) for t in titles], rng)
    assert same > random + 0.15
    # ...but the idiosyncratic part is shown by nothing.
    idiosyncratic = hidden.title_latent[:, slice(*parts["idiosyncratic"])]
    same, random = _cosine_gap(idiosyncratic, [{t["genres"][0]} for t in titles], rng)
    assert abs(same - random) < 0.1

    # Synopsis: words from a dimension's positive bank minus its negative bank follow that latent dimension.
    synopsis = hidden.title_latent[:, slice(*parts["synopsis"])]
    with_text = [i for i, t in enumerate(titles) if t["synopsis"]]
    for dim, (positive, negative) in enumerate(WORD_BANKS):
        def hits(text: str, bank) -> int:
            return sum(text.count(word) for slot in bank for word in slot)
        balance = np.array([hits(titles[i]["synopsis"], positive) - hits(titles[i]["synopsis"], negative)
                            for i in with_text])
        assert np.corrcoef(balance, synopsis[with_text, dim])[0, 1] > 0.4, dim

    # Cover art: brightness follows its latent dimension.
    art = hidden.title_latent[:, slice(*parts["cover_art"])]
    with_image = [i for i, t in enumerate(titles) if t["image"]]
    brightness = []
    for i in with_image:
        with Image.open(tiny_dir / titles[i]["image"]) as image:
            brightness.append(np.asarray(image.convert("L"), dtype=np.float64)[:190].mean())
    assert np.corrcoef(brightness, art[with_image, 3])[0, 1] > 0.5
