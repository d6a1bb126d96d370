"""The simulated world before any watching: titles with hidden factors and metadata, the people pool, the users.

The generative model is described in docs/design.md ("The catalog simulator"). Title index ``i`` becomes
``title_id = i + 1`` and user index ``u`` becomes ``user_id = u + 1``; titles are numbered in acquisition order (the
initial library first), as a service's catalogue ids grow over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from rec_assets.sources.simulator import vocab
from rec_assets.sources.simulator.config import SimulatorConfig

# The title latent vector and the user taste vector share this layout: one slice per way the taste shows.
LATENT_PARTS: dict[str, tuple[int, int]] = {
    "categorical": (0, 8),  # genres, subgenres, cast, directors, country, maturity
    "synopsis": (8, 14),  # one dimension per synopsis word-bank pair
    "cover_art": (14, 18),  # hue, shape family, texture density, brightness
    "idiosyncratic": (18, 22),  # shown by no metadata: only watch history (an ID embedding) can learn it
}
LATENT_DIM = 22
# How much each part weighs in a user's affinity for a title.
PART_WEIGHTS: dict[str, float] = {"categorical": 1.0, "synopsis": 0.8, "cover_art": 0.6, "idiosyncratic": 0.8}

_CAT = slice(*LATENT_PARTS["categorical"])
_SYN = slice(*LATENT_PARTS["synopsis"])
_ART = slice(*LATENT_PARTS["cover_art"])
_IDIO = slice(*LATENT_PARTS["idiosyncratic"])
_N_CAT = _CAT.stop - _CAT.start

# Independent random streams per component, so that e.g. drawing one more image never shifts the events.
STREAM_VOCAB, STREAM_TITLES, STREAM_PEOPLE, STREAM_USERS, STREAM_TEXT, STREAM_ART, STREAM_EVENTS = range(1, 8)

# Synopsis directions that genres push towards: {genre: {synopsis dim: sign}} (see WORD_BANKS), so that a horror
# synopsis tends to sound like horror. The rest of the synopsis latent is the title's own.
_GENRE_SYNOPSIS: dict[str, dict[int, float]] = {
    "Action": {4: -1.0}, "Adventure": {2: -1.0}, "Animation": {5: 1.0}, "Anime": {5: 0.7, 1: 0.5},
    "Arts & Culture": {5: -0.8}, "Biography": {5: -1.0, 3: -0.5}, "Comedy": {3: 1.0}, "Crime": {2: 1.0},
    "Documentary": {5: -1.2}, "Drama": {3: -1.0}, "Family": {0: -1.0, 5: 0.6}, "Fantasy": {5: 1.0, 1: -0.4},
    "History": {1: -1.0}, "Horror": {0: 1.2}, "Kids": {5: 1.0, 0: -0.8}, "Music": {4: 0.5, 5: -0.5},
    "Mystery": {2: 0.6, 0: 0.5}, "Reality": {3: 0.6, 5: -0.6}, "Romance": {4: 1.0}, "Science Fiction": {1: 1.0},
    "Special Interest": {5: -0.8}, "Sports": {5: -0.7, 2: -0.4}, "Suspense": {2: 0.6, 0: 0.6},
    "Thriller": {2: 0.8, 4: -0.4}, "War": {4: -1.0, 1: -0.6}, "Western": {1: -0.6, 2: -0.6},
    "Young Adult": {4: 0.6, 3: 0.4},
}
# Brightness (cover-art dim 3) that genres push towards: dark horror posters, bright kids' posters.
_GENRE_BRIGHTNESS: dict[str, float] = {
    "Horror": -1.5, "Thriller": -0.8, "Crime": -0.8, "Suspense": -0.7, "War": -0.6, "Mystery": -0.5,
    "Kids": 1.5, "Family": 1.2, "Animation": 1.0, "Comedy": 0.8, "Romance": 0.6, "Anime": 0.5,
}
# Maturity pushes: the rating is a noisy function of the categorical latent plus these.
_GENRE_MATURITY: dict[str, float] = {
    "Kids": -2.5, "Family": -1.8, "Animation": -0.8, "Special Interest": -0.8, "Documentary": -0.4,
    "Horror": 1.5, "Crime": 1.0, "Thriller": 1.0, "War": 0.8, "Suspense": 0.6, "Action": 0.5,
}
_MOVIE_CUTS = (-1.4, -0.5, 0.5, 2.3)  # G | PG | PG-13 | R | NC-17
_TV_CUTS = (-2.0, -1.3, -0.6, 0.2, 1.1)  # TV-Y | TV-Y7 | TV-G | TV-PG | TV-14 | TV-MA
_INTL_CUTS = (-1.3, -0.5, 0.4, 1.4)  # ALL | 7+ | 13+ | 16+ | 18+


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A generator for one component (and e.g. one week), independent of every other component."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *keys]))


@dataclass(frozen=True)
class Vocabulary:
    """Names of the categorical values and their hidden geometry (drawn once per seed)."""

    genres: tuple[str, ...]
    subgenres: tuple[str, ...]
    subgenre_genre: np.ndarray  # (n_subgenres,) genre index of each subgenre
    countries: tuple[str, ...]
    genre_centroids: np.ndarray  # (n_genres, 8) in the categorical latent part
    subgenre_centroids: np.ndarray  # (n_subgenres, 8)
    country_centroids: np.ndarray  # (n_countries, 8)
    genre_synopsis: np.ndarray  # (n_genres, 6)
    genre_cover_art: np.ndarray  # (n_genres, 4)
    genre_maturity: np.ndarray  # (n_genres,)
    maturity_direction: np.ndarray  # (8,)


@dataclass(frozen=True)
class People:
    names: tuple[str, ...]
    is_director: np.ndarray  # (n_people,) bool
    country: np.ndarray  # (n_people,) country index
    style: np.ndarray  # (n_people, 8) in the categorical latent part
    log_fame: np.ndarray  # (n_people,) Zipf-like: log of 1 / rank^1.1


@dataclass(frozen=True)
class Titles:
    category: np.ndarray  # (n,) 0 movie, 1 tv
    genres: tuple[tuple[int, ...], ...]  # primary genre first
    subgenres: tuple[tuple[int, ...], ...]
    actors: tuple[tuple[int, ...], ...]  # person indexes
    directors: tuple[tuple[int, ...], ...]
    maturity: np.ndarray  # (n,) index into vocab.MATURITY_RATINGS
    country: np.ndarray  # (n,) country index
    release_year: np.ndarray
    acquisition_day: np.ndarray  # (n,) days after first_day, non-decreasing
    has_synopsis: np.ndarray  # bool
    has_image: np.ndarray  # bool
    latent: np.ndarray  # (n, LATENT_DIM) float32, hidden
    log_popularity: np.ndarray  # (n,) float32, hidden base popularity
    novelty_boost: np.ndarray  # (n,) hidden: logit boost in the acquisition week (lower for a release drop)


@dataclass(frozen=True)
class Users:
    country: np.ndarray  # (n,) country index
    age_band: np.ndarray  # index into vocab.AGE_BANDS
    plan: np.ndarray  # index into vocab.PLANS
    device: np.ndarray  # index into vocab.DEVICES
    taste: np.ndarray  # (n, LATENT_DIM) float32, hidden
    weekly_rate: np.ndarray  # (n,) expected watches per active week, hidden
    join_week: np.ndarray  # first active week
    end_week: np.ndarray  # first week no longer active (n_weeks if never churning)


@dataclass(frozen=True)
class World:
    config: SimulatorConfig
    vocab: Vocabulary
    people: People
    titles: Titles
    users: Users

    @property
    def acquisition_week(self) -> np.ndarray:
        return self.titles.acquisition_day // 7


def season_factor(config: SimulatorConfig) -> np.ndarray:
    """Relative viewing per week: more in winter, most around the year-end holidays."""
    day_of_year = np.array([(config.first_day + timedelta(days=7 * w + 3)).timetuple().tm_yday
                            for w in range(config.n_weeks)], dtype=np.float64)
    winter = 0.12 * np.cos(2.0 * np.pi * (day_of_year - 10.0) / 365.25)
    # Days from Christmas (day 359), the short way round the year.
    from_christmas = (day_of_year - 359.0 + 182.0) % 365.0 - 182.0
    holidays = 0.25 * np.exp(-0.5 * (from_christmas / 6.0) ** 2)
    return 1.0 + winter + holidays


def _weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)


def _largest_remainder(total: int, rates: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``rates`` (deterministic rounding)."""
    exact = total * rates / rates.sum()
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def build_vocabulary(config: SimulatorConfig) -> Vocabulary:
    rng = rng_for(config.seed, STREAM_VOCAB)
    genres = tuple(g[0] for g in vocab.GENRES)
    subgenres = tuple(s for g in vocab.GENRES for s in g[3])
    subgenre_genre = np.array([gi for gi, g in enumerate(vocab.GENRES) for _ in g[3]], dtype=np.int32)
    countries = tuple(c[0] for c in vocab.COUNTRIES)
    genre_centroids = rng.normal(0.0, 1.0, (len(genres), _N_CAT))
    subgenre_centroids = genre_centroids[subgenre_genre] + rng.normal(0.0, 0.55, (len(subgenres), _N_CAT))
    country_centroids = rng.normal(0.0, 0.8, (len(countries), _N_CAT))
    genre_synopsis = rng.normal(0.0, 0.25, (len(genres), _SYN.stop - _SYN.start))
    for gi, name in enumerate(genres):
        for dim, sign in _GENRE_SYNOPSIS.get(name, {}).items():
            genre_synopsis[gi, dim] += 1.3 * sign
    genre_cover_art = rng.normal(0.0, 0.8, (len(genres), _ART.stop - _ART.start))
    genre_cover_art[:, 3] = [_GENRE_BRIGHTNESS.get(name, 0.0) for name in genres]
    genre_maturity = np.array([_GENRE_MATURITY.get(name, 0.0) for name in genres])
    maturity_direction = rng.normal(0.0, 1.0, _N_CAT)
    maturity_direction /= np.linalg.norm(maturity_direction)
    return Vocabulary(genres, subgenres, subgenre_genre, countries, genre_centroids, subgenre_centroids,
                      country_centroids, genre_synopsis, genre_cover_art, genre_maturity, maturity_direction)


def build_people(config: SimulatorConfig, voc: Vocabulary) -> People:
    rng = rng_for(config.seed, STREAM_PEOPLE)
    n = config.n_people
    names = _person_names(rng, n)
    is_director = rng.random(n) < 0.15
    country = _weighted(rng, np.array([c[1] for c in vocab.COUNTRIES]), n)
    genre_weights = np.array([g[1] + g[2] for g in vocab.GENRES])
    home_genre = _weighted(rng, genre_weights, n)
    style = (voc.genre_centroids[home_genre] + 0.6 * voc.country_centroids[country]
             + rng.normal(0.0, 0.5, (n, _N_CAT)))
    rank = rng.permutation(n) + 1
    log_fame = -1.1 * np.log(rank)
    return People(names, is_director, country.astype(np.int32), style.astype(np.float32), log_fame)


def _person_names(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    """Unique full names: first-last pairs, then first-initial-last once the pairs run out."""
    firsts, lasts = vocab.FIRST_NAMES, vocab.LAST_NAMES
    n_pairs = len(firsts) * len(lasts)
    n_total = n_pairs * (1 + len(vocab.MIDDLE_INITIALS))
    if n > n_total:
        raise ValueError(f"n_people={n} exceeds the {n_total} distinct names the simulator can make")
    # Pairs first (shuffled), so that small pools have no middle initials.
    codes = np.concatenate([rng.permutation(n_pairs), n_pairs + rng.permutation(n_total - n_pairs)])[:n]
    names = []
    for code in codes.tolist():
        middle, pair = divmod(code, n_pairs)
        first, last = firsts[pair // len(lasts)], lasts[pair % len(lasts)]
        names.append(f"{first} {last}" if middle == 0 else f"{first} {vocab.MIDDLE_INITIALS[middle - 1]}. {last}")
    return tuple(names)


def _acquisition_days(config: SimulatorConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Acquisition day of every title (non-decreasing: ids follow acquisition order) and whether it came in the
    release drop (see ``SimulatorConfig.drop_titles``)."""
    n_regular = config.n_titles - config.drop_titles
    n_initial = int(round(n_regular * config.initial_library_share))
    n_arrivals = n_regular - n_initial
    days = [np.zeros(n_initial, dtype=np.int64)]
    if n_arrivals and config.n_weeks > 1:
        t = np.arange(1, config.n_weeks, dtype=np.float64) / max(config.n_weeks - 1, 1)
        per_week = _largest_remainder(n_arrivals, np.exp(config.arrival_growth * t))
        week = np.repeat(np.arange(1, config.n_weeks), per_week)
        # Releases cluster on Fridays, as on real services.
        weekday = _weighted(rng, np.array([0.16, 0.12, 0.14, 0.12, 0.30, 0.08, 0.08]), n_arrivals)
        days.append(np.sort(7 * week + weekday))
    elif n_arrivals:
        days.append(np.zeros(n_arrivals, dtype=np.int64))
    # The drop lands at once, at the start of its week's Monday: before that day's premieres in id order, so that an
    # id-order tie-break (popularity on cold titles) does not single out the premieres, which novelty favours.
    days.insert(0, np.full(config.drop_titles, 7 * config.drop_week_index, dtype=np.int64))
    is_drop = np.concatenate([np.ones(config.drop_titles, dtype=bool), np.zeros(n_regular, dtype=bool)])
    order = np.argsort(np.concatenate(days), kind="stable")
    return np.concatenate(days)[order], is_drop[order]


def build_titles(config: SimulatorConfig, voc: Vocabulary, people: People) -> Titles:
    rng = rng_for(config.seed, STREAM_TITLES)
    n = config.n_titles
    acquisition_day, is_drop = _acquisition_days(config, rng)
    category = (rng.random(n) < config.tv_share).astype(np.int8)
    movie_w = np.array([g[1] for g in vocab.GENRES])
    tv_w = np.array([g[2] for g in vocab.GENRES])
    genre = np.where(category == 1, _weighted(rng, tv_w, n), _weighted(rng, movie_w, n))
    # Primary subgenre: uniform among the genre's subgenres.
    sub_start = np.searchsorted(voc.subgenre_genre, np.arange(len(voc.genres)))
    sub_count = np.bincount(voc.subgenre_genre, minlength=len(voc.genres))
    subgenre = sub_start[genre] + (rng.random(n) * sub_count[genre]).astype(np.int64)
    origin_w = np.array([c[1] for c in vocab.COUNTRIES])
    country = _weighted(rng, origin_w, n)
    anime = genre == voc.genres.index("Anime")
    country = np.where(anime & (rng.random(n) < 0.85), voc.countries.index("JP"), country)

    latent = np.empty((n, LATENT_DIM))
    latent[:, _CAT] = (voc.subgenre_centroids[subgenre] + 0.6 * voc.country_centroids[country]
                       + rng.normal(0.0, 0.6, (n, _N_CAT)))
    latent[:, _SYN] = voc.genre_synopsis[genre] + rng.normal(0.0, 0.9, (n, _SYN.stop - _SYN.start))
    latent[:, _ART] = 0.6 * voc.genre_cover_art[genre] + rng.normal(0.0, 0.85, (n, _ART.stop - _ART.start))
    latent[:, _IDIO] = rng.normal(0.0, 1.0, (n, _IDIO.stop - _IDIO.start))
    latent = _standardise(latent)
    z_cat = latent[:, _CAT]

    genres, subgenres = _secondary_genres(rng, voc, z_cat, genre, subgenre)
    actors, directors = _cast(rng, config, people, z_cat, country, category)

    maturity_score = (z_cat @ voc.maturity_direction + voc.genre_maturity[genre] + rng.normal(0.0, 0.5, n))
    maturity = _maturity(rng, maturity_score, category, country, voc.countries.index("US"))

    acq_year = np.array([(config.first_day + timedelta(days=int(d))).year for d in acquisition_day])
    # About half of the regular arrivals are new releases; a drop is mostly back catalogue.
    fresh = (rng.random(n) < np.where(is_drop, 0.1, 0.45)) & (acquisition_day > 0)
    old_year = acq_year - 2 - np.floor(rng.exponential(10.0, n)).astype(np.int64)
    new_year = acq_year - (rng.random(n) < 0.3)
    release_year = np.maximum(np.where(fresh, new_year, old_year), 1930)

    has_synopsis = rng.random(n) >= config.missing_synopsis_share
    has_image = rng.random(n) >= config.missing_image_share
    log_popularity = rng.normal(0.0, config.popularity_sigma, n)
    novelty_boost = np.where(is_drop, config.drop_novelty_boost, config.novelty_boost)
    return Titles(category, genres, subgenres, actors, directors, maturity, country.astype(np.int32),
                  release_year.astype(np.int32), acquisition_day, has_synopsis, has_image,
                  latent.astype(np.float32), log_popularity.astype(np.float32), novelty_boost)


def _secondary_genres(rng, voc: Vocabulary, z_cat, genre, subgenre):
    """Extra genres and subgenres that fit the title's categorical latent (so they carry its signal too)."""
    n = len(genre)
    scale = 1.0 / np.sqrt(_N_CAT)
    genre_logit = 1.5 * scale * (z_cat @ voc.genre_centroids.T) + rng.gumbel(size=(n, len(voc.genres)))
    genre_logit[np.arange(n), genre] = -np.inf
    ranked_genres = np.argsort(-genre_logit, axis=1, kind="stable")[:, :2]
    n_extra = _weighted(rng, np.array([0.35, 0.45, 0.20]), n)
    sub_logit = 1.5 * scale * (z_cat @ voc.subgenre_centroids.T) + rng.gumbel(size=(n, len(voc.subgenres)))
    add_sub = rng.random((n, 3)) < np.array([0.6, 0.6, 0.3])
    genres_out, subs_out = [], []
    for i in range(n):
        g = [int(genre[i])] + [int(x) for x in ranked_genres[i, :n_extra[i]]]
        s = [int(subgenre[i])]
        # The best-fitting subgenre under each extra genre, and sometimes a second one under the primary genre.
        wanted = [gi for slot, gi in enumerate(g[1:]) if add_sub[i, slot]] + ([g[0]] if add_sub[i, 2] else [])
        for gi in wanted:
            options = np.flatnonzero(voc.subgenre_genre == gi)
            options = options[~np.isin(options, s)]
            if len(options):
                s.append(int(options[np.argmax(sub_logit[i, options])]))
        genres_out.append(tuple(g))
        subs_out.append(tuple(s))
    return tuple(genres_out), tuple(subs_out)


def _cast(rng, config: SimulatorConfig, people: People, z_cat, country, category):
    """Cast and directors: famous people more often, and people whose style fits the title (the cast signal)."""
    n = len(category)
    n_actors = np.where(category == 1, rng.integers(4, 9, n), rng.integers(3, 7, n))
    n_directors = np.where(category == 1, rng.integers(1, 4, n), 1 + (rng.random(n) < 0.1))
    actors_out: list[tuple[int, ...]] = []
    directors_out: list[tuple[int, ...]] = []
    pools = (np.flatnonzero(~people.is_director), np.flatnonzero(people.is_director))
    picks: list[list[np.ndarray]] = [[], []]
    scale = 2.0 / np.sqrt(_N_CAT)
    block = max(1, 4_000_000 // len(people.names))
    for start in range(0, n, block):
        stop = min(n, start + block)
        for role, (pool, counts) in enumerate(zip(pools, (n_actors, n_directors))):
            k = int(counts[start:stop].max())
            logit = (people.log_fame[pool][None, :]
                     + scale * (z_cat[start:stop] @ people.style[pool].T)
                     + 1.5 * (country[start:stop, None] == people.country[pool][None, :])
                     + rng.gumbel(size=(stop - start, len(pool))))
            top = np.argpartition(-logit, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(logit, top, axis=1), axis=1, kind="stable")
            picks[role].append(pool[np.take_along_axis(top, order, axis=1)])
    actor_rows = np.concatenate([np.pad(p, ((0, 0), (0, 8 - p.shape[1])), constant_values=-1) for p in picks[0]])
    director_rows = np.concatenate([np.pad(p, ((0, 0), (0, 3 - p.shape[1])), constant_values=-1)
                                    for p in picks[1]])
    for i in range(n):
        actors_out.append(tuple(int(x) for x in actor_rows[i, :n_actors[i]]))
        directors_out.append(tuple(int(x) for x in director_rows[i, :n_directors[i]]))
    return tuple(actors_out), tuple(directors_out)


def _maturity(rng, score, category, country, us_index):
    movie = np.digitize(score, _MOVIE_CUTS)
    tv = len(vocab.MOVIE_RATINGS) + np.digitize(score, _TV_CUTS)
    intl = len(vocab.MOVIE_RATINGS) + len(vocab.TV_RATINGS) + np.digitize(score, _INTL_CUTS)
    rating = np.where(category == 1, tv, movie)
    rating = np.where((country != us_index) & (rng.random(len(score)) < 0.55), intl, rating)
    unrated = vocab.MATURITY_RATINGS.index("NR")
    return np.where(rng.random(len(score)) < 0.03, unrated, rating).astype(np.int32)


def build_users(config: SimulatorConfig, voc: Vocabulary) -> Users:
    rng = rng_for(config.seed, STREAM_USERS)
    n = config.n_users
    country = _weighted(rng, np.array([c[2] for c in vocab.COUNTRIES]), n)
    age_band = _weighted(rng, np.array([a[1] for a in vocab.AGE_BANDS]), n)
    plan = _weighted(rng, np.array([p[1] for p in vocab.PLANS]), n)
    device = _weighted(rng, np.array([d[1] for d in vocab.DEVICES]), n)
    favourite = _weighted(rng, np.array([g[1] + g[2] for g in vocab.GENRES]), n)
    age_offsets = rng.normal(0.0, 0.45, (len(vocab.AGE_BANDS), LATENT_DIM))
    taste = rng.normal(0.0, 0.8, (n, LATENT_DIM)) + age_offsets[age_band]
    # Tastes that metadata can meet: a favourite genre, the home country's cinema, its usual synopses and posters.
    taste[:, _CAT] += 0.8 * voc.genre_centroids[favourite] + 0.7 * voc.country_centroids[country]
    taste[:, _SYN] += 0.7 * voc.genre_synopsis[favourite]
    taste[:, _ART] += 0.5 * voc.genre_cover_art[favourite]
    plan_multiplier = np.array([p[2] for p in vocab.PLANS])[plan]
    rate = rng.lognormal(0.0, 0.9, n) * plan_multiplier

    join_week = np.zeros(n, dtype=np.int64)
    late = rng.random(n) >= config.initial_user_share
    if config.n_weeks > 1:
        later_weeks = np.arange(1, config.n_weeks)
        join_week[late] = later_weeks[_weighted(rng, np.exp(1.0 * later_weeks / config.n_weeks), int(late.sum()))]
    churns = rng.random(n) < config.churn_share
    tenure = 4 + np.floor(rng.exponential(40.0, n)).astype(np.int64)
    end_week = np.where(churns, np.minimum(join_week + tenure, config.n_weeks), config.n_weeks)

    # Scale the rates so that the expected number of events meets the target.
    season_cum = np.concatenate([[0.0], np.cumsum(season_factor(config))])
    exposure = season_cum[end_week] - season_cum[join_week]
    rate *= config.target_events / max(float((rate * exposure).sum()), 1e-9)
    return Users(country.astype(np.int32), age_band.astype(np.int32), plan.astype(np.int32),
                 device.astype(np.int32), taste.astype(np.float32), rate, join_week, end_week)


def build_world(config: SimulatorConfig) -> World:
    voc = build_vocabulary(config)
    people = build_people(config, voc)
    titles = build_titles(config, voc, people)
    users = build_users(config, voc)
    return World(config, voc, people, titles, users)


def affinity_weights(config: SimulatorConfig) -> np.ndarray:
    """Per-dimension weights w such that affinity(user, title) = sum(taste * w * latent)."""
    w = np.empty(LATENT_DIM)
    for part, (lo, hi) in LATENT_PARTS.items():
        w[lo:hi] = PART_WEIGHTS[part]
    return (config.taste_strength / np.sqrt(LATENT_DIM) * w).astype(np.float32)

