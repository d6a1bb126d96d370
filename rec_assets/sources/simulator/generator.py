"""The simulator's generator: builds the world and its watch events and writes them as a canonical directory.

``generate`` writes ``titles.jsonl``, ``users.csv``, ``events.csv``, ``images/<title_id>.jpg`` and ``manifest.json``
as documented in ``rec_assets.sources.layout``; the same config gives the same bytes in every run and process.

The hidden factors are never in the layout's files; ``generate_hidden`` gives them to tests and notebooks, and
``oracle_factors.npz`` (``ORACLE_FILE``) holds what the evaluation's oracle rows need. Only
``rec_assets.evaluation.oracle`` reads that file: no feature or model may.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from rec_assets.sources.layout import EVENT_COLUMNS, EVENTS_FILE, MANIFEST_FILE, TITLES_FILE, USERS_FILE
from rec_assets.sources.simulator import vocab
from rec_assets.sources.simulator.art import draw_cover, encode_jpeg
from rec_assets.sources.simulator.config import GENERATOR_VERSION, SimulatorConfig, simulator_span
from rec_assets.sources.simulator.events import Events, simulate_events
from rec_assets.sources.simulator.text import SynopsisWriter
from rec_assets.sources.simulator.world import (
    LATENT_PARTS,
    STREAM_ART,
    STREAM_TEXT,
    World,
    affinity_weights,
    build_world,
    rng_for,
)
from rec_assets.storage.hashing import file_sha256

GENERATOR_NAME = "rec_assets.sources.simulator"
IMAGES_DIR = "images"
# The hidden factors the evaluation's oracle ranks by (see ``write_oracle_factors``); read by nothing else.
ORACLE_FILE = "oracle_factors.npz"
USER_COLUMNS: tuple[str, ...] = ("user_id", "country", "age_band", "plan", "device")
_EVENT_CHUNK = 1_000_000


@dataclass(frozen=True)
class HiddenFactors:
    """The simulator's ground truth, for tests and analysis; never written to the layout.

    Row i of the title arrays is ``title_id = i + 1``; row u of the user arrays is ``user_id = u + 1``.
    """

    title_latent: np.ndarray  # (n_titles, 22) float32
    user_taste: np.ndarray  # (n_users, 22) float32
    affinity_weights: np.ndarray  # (22,): affinity = sum(taste * weights * latent)
    latent_parts: dict[str, tuple[int, int]]  # part name -> [start, stop) dims
    title_log_popularity: np.ndarray  # (n_titles,)
    title_novelty_boost: np.ndarray  # (n_titles,) novelty logit in the acquisition week
    title_acquisition_week: np.ndarray  # (n_titles,) week index from first_day
    title_primary_genre: np.ndarray  # (n_titles,) genre index
    user_weekly_rate: np.ndarray  # (n_users,)
    user_join_week: np.ndarray
    user_end_week: np.ndarray

    def affinity(self, user_index: np.ndarray, title_index: np.ndarray) -> np.ndarray:
        """Affinity of (user, title) index pairs (broadcast), the taste term of the choice logit."""
        return np.einsum("...d,...d->...", self.user_taste[user_index] * self.affinity_weights,
                         self.title_latent[title_index])


@dataclass(frozen=True)
class Simulation:
    """A simulated world and its watch events, in memory (no images drawn, nothing written)."""

    world: World
    events: Events


def _hidden_from_world(world: World) -> HiddenFactors:
    titles, users = world.titles, world.users
    return HiddenFactors(
        title_latent=titles.latent,
        user_taste=users.taste,
        affinity_weights=affinity_weights(world.config),
        latent_parts=dict(LATENT_PARTS),
        title_log_popularity=titles.log_popularity,
        title_novelty_boost=titles.novelty_boost,
        title_acquisition_week=world.acquisition_week,
        title_primary_genre=np.array([g[0] for g in titles.genres], dtype=np.int32),
        user_weekly_rate=users.weekly_rate,
        user_join_week=users.join_week,
        user_end_week=users.end_week,
    )


def generate_hidden(config: SimulatorConfig) -> HiddenFactors:
    """The hidden factors of the dataset ``generate(config, ...)`` writes (cheap: no events, no images)."""
    return _hidden_from_world(build_world(config))


def simulate(config: SimulatorConfig) -> Simulation:
    """The world and its events in memory, exactly as ``generate`` would write them."""
    world = build_world(config)
    return Simulation(world, simulate_events(world))


def output_dir_name(config: SimulatorConfig) -> str:
    return f"{config.preset}-seed{config.seed}-{config.config_hash()[:10]}"


def generate(config: SimulatorConfig, out_dir: Path) -> dict:
    """Write the canonical layout for ``config`` into ``out_dir`` atomically; returns the manifest.

    The directory is built as a hidden sibling and renamed into place, so a crash never leaves a half-written
    ``out_dir``; an existing ``out_dir`` is replaced.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        # mkdtemp makes the directory private (0700); the dataset is meant to be read by other processes and users.
        staging.chmod(0o755)
        manifest = _write_layout(config, staging)
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def ensure_generated(config: SimulatorConfig, root: Path) -> Path:
    """``root/<preset>-seed<seed>-<config hash>/``, generated only if absent or not matching ``config``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out_dir = root / output_dir_name(config)
    if _is_current(config, out_dir):
        return out_dir
    # Concurrent runs (multiprocess executor, backfills) wait for one generation instead of each doing it.
    with _exclusive_lock(root / f".{out_dir.name}.lock"):
        if not _is_current(config, out_dir):
            generate(config, out_dir)
    return out_dir


def read_manifest(out_dir: Path) -> dict | None:
    try:
        return json.loads((Path(out_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(config: SimulatorConfig, out_dir: Path) -> bool:
    manifest = read_manifest(out_dir)
    if manifest is None:
        return False
    if manifest.get("config_hash") != config.config_hash() or manifest.get("config") != config.to_json_dict():
        return False
    return all((out_dir / name).is_file() for name in (TITLES_FILE, USERS_FILE, EVENTS_FILE, ORACLE_FILE))


@contextmanager
def _exclusive_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, generation stays atomic regardless
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    # A directory cannot be renamed over a non-empty one: move the old one aside first, then drop it.
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.replace(out_dir, retired / "old")
    os.replace(staging, out_dir)
    shutil.rmtree(retired, ignore_errors=True)


def _write_layout(config: SimulatorConfig, target: Path) -> dict:
    world = build_world(config)
    image_digest, n_images = _write_images(world, target)
    n_titles = _write_titles(world, target)
    n_users = _write_users(world, target)
    events = simulate_events(world)
    _write_events(events, target)
    write_oracle_factors(target / ORACLE_FILE, oracle_arrays(world))
    first_day, end_day = simulator_span(config)
    manifest = {
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "preset": config.preset,
        "seed": config.seed,
        "config": config.to_json_dict(),
        "config_hash": config.config_hash(),
        "first_event_day": first_day.isoformat(),
        "last_event_day": (end_day - timedelta(days=1)).isoformat(),
        "end_day_exclusive": end_day.isoformat(),
        "n_weeks": config.n_weeks,
        "counts": {"titles": n_titles, "users": n_users, "events": len(events), "images": n_images},
        "sha256": {
            TITLES_FILE: file_sha256(target / TITLES_FILE),
            USERS_FILE: file_sha256(target / USERS_FILE),
            EVENTS_FILE: file_sha256(target / EVENTS_FILE),
            IMAGES_DIR: image_digest,
            ORACLE_FILE: file_sha256(target / ORACLE_FILE),
        },
    }
    (target / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _image_path(title_index: int) -> str:
    return f"{IMAGES_DIR}/{title_index + 1}.jpg"


def _write_images(world: World, target: Path) -> tuple[str, int]:
    """Draw every cover; returns a digest over (file name, bytes) in title order, and the count."""
    config, titles = world.config, world.titles
    (target / IMAGES_DIR).mkdir()
    rng = rng_for(config.seed, STREAM_ART)
    lo, hi = LATENT_PARTS["cover_art"]
    digest = hashlib.sha256()
    count = 0
    for i in range(config.n_titles):
        if not titles.has_image[i]:
            continue
        data = encode_jpeg(draw_cover(titles.latent[i, lo:hi], rng, config.image_width, config.image_height),
                           config.jpeg_quality)
        relative = _image_path(i)
        (target / relative).write_bytes(data)
        digest.update(relative.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
        count += 1
    return digest.hexdigest(), count


def _write_titles(world: World, target: Path) -> int:
    config, titles, voc, people = world.config, world.titles, world.vocab, world.people
    writer = SynopsisWriter(rng_for(config.seed, STREAM_TEXT))
    lo, hi = LATENT_PARTS["synopsis"]
    with open(target / TITLES_FILE, "w", encoding="utf-8", newline="\n") as handle:
        for i in range(config.n_titles):
            is_tv = bool(titles.category[i] == 1)
            text_latent = titles.latent[i, lo:hi].astype(np.float64)
            name = writer.title(text_latent, is_tv)
            synopsis = writer.synopsis(text_latent, is_tv)
            record = {
                "title_id": i + 1,
                "title": name,
                "category": "tv" if is_tv else "movie",
                "genres": [voc.genres[g] for g in titles.genres[i]],
                "subgenres": [voc.subgenres[s] for s in titles.subgenres[i]],
                "actors": [people.names[p] for p in titles.actors[i]],
                "directors": [people.names[p] for p in titles.directors[i]],
                "maturity_rating": vocab.MATURITY_RATINGS[int(titles.maturity[i])],
                "country": voc.countries[int(titles.country[i])],
                "release_year": int(titles.release_year[i]),
                "acquisition_date": (config.first_day + timedelta(days=int(titles.acquisition_day[i]))).isoformat(),
                "synopsis": synopsis if titles.has_synopsis[i] else None,
                "image": _image_path(i) if titles.has_image[i] else None,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return config.n_titles


def _write_users(world: World, target: Path) -> int:
    users, voc = world.users, world.vocab
    columns = (
        [str(u + 1) for u in range(world.config.n_users)],
        [voc.countries[c] for c in users.country.tolist()],
        [vocab.AGE_BANDS[a][0] for a in users.age_band.tolist()],
        [vocab.PLANS[p][0] for p in users.plan.tolist()],
        [vocab.DEVICES[d][0] for d in users.device.tolist()],
    )
    lines = [",".join(USER_COLUMNS)] + [",".join(row) for row in zip(*columns)]
    with open(target / USERS_FILE, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
    return world.config.n_users


def _write_events(events: Events, target: Path) -> None:
    """events.csv in chunks (pyarrow's CSV writer), ISO-8601 UTC timestamps, header unquoted as the layout shows."""
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with open(target / EVENTS_FILE, "wb") as handle:
        handle.write((",".join(EVENT_COLUMNS) + "\n").encode("ascii"))
        for start in range(0, len(events), _EVENT_CHUNK):
            stop = min(len(events), start + _EVENT_CHUNK)
            stamps = np.datetime_as_string(events.timestamp[start:stop].astype("datetime64[s]"), timezone="UTC")
            table = pa.table({
                "user_id": pa.array(events.user[start:stop] + 1, type=pa.int32()),
                "title_id": pa.array(events.title[start:stop] + 1, type=pa.int32()),
                "timestamp": pa.array(stamps, type=pa.string()),
            })
            pa_csv.write_csv(table, handle, options)


def oracle_arrays(world: World) -> dict[str, np.ndarray]:
    """What the oracle needs to rebuild the choice logit of any (user, title) pair in any week (ids, not rows)."""
    config, titles, users = world.config, world.titles, world.users
    return {
        "user_id": np.arange(1, config.n_users + 1, dtype=np.int64),
        "title_id": np.arange(1, config.n_titles + 1, dtype=np.int64),
        "user_taste": users.taste.astype(np.float32),
        "title_latent": titles.latent.astype(np.float32),
        "affinity_weights": affinity_weights(config),
        "part_names": np.array(list(LATENT_PARTS)),
        "part_bounds": np.array(list(LATENT_PARTS.values()), dtype=np.int64),
        "title_log_popularity": titles.log_popularity.astype(np.float32),
        "title_novelty_boost": np.asarray(titles.novelty_boost, dtype=np.float64),
        "title_acquisition_day": np.asarray(titles.acquisition_day, dtype=np.int64),
        "first_day": np.array(config.first_day.isoformat()),
        "novelty_decay_weeks": np.array(config.novelty_decay_weeks, dtype=np.float64),
    }


def write_oracle_factors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (``numpy.load`` reads it) with fixed zip timestamps, so the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue())
