"""Typed resources: every setting a user may change, each bound to one environment variable.

A field made with ``setting(env, default, ...)`` has its one default there; ``from_environment(cls)`` binds
it to ``EnvVar(env)`` when the variable is set, so a fresh clone runs with no configuration and the UI
shows where each value came from. ``resources`` is the code location's resource set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from rec_assets.asset_io import WAREHOUSE_TABLES
from rec_assets.model.train import TrainConfig
from rec_assets.sources.canonical import SOURCE_KINDS, CanonicalSource, open_source
from rec_assets.sources.protocol import DEFAULT_EARLIEST_EVENT, DEFAULT_FUTURE_SLACK_DAYS, TimestampBounds
from rec_assets.sources.simulator import config_for, ensure_generated, simulator_span
from rec_assets.split.windows import WindowLengths
from rec_assets.storage.artifacts import REFS_FOLDER
from rec_assets.storage.duckdb_file import require_warehouse
from rec_assets.storage.object_store import AwsSettings
from rec_assets.storage.parquet import DUCKDB_STORE, TableStore, is_duckdb_store

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOME = PROJECT_ROOT / ".rec_home"
ENV_KEY = "env"
R = TypeVar("R", bound=ConfigurableResource)


def rec_home() -> Path:
    """Where the DuckDB file, artifacts and the Dagster instance live (``REC_HOME``)."""
    return Path(os.environ.get("REC_HOME") or DEFAULT_HOME).resolve()


def setting(env: str, default: Any, description: str, secret: bool = False) -> Any:
    """A resource field whose value the environment variable ``env`` sets (``from_environment``); a ``secret``
    one is left out of the resource's repr."""
    return Field(default=default, description=f"{env}: {description}", json_schema_extra={ENV_KEY: env},
                 repr=not secret)


def env_names(cls: type[ConfigurableResource]) -> dict[str, str]:
    """Field name -> the environment variable that sets it."""
    return {name: info.json_schema_extra[ENV_KEY] for name, info in cls.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and ENV_KEY in info.json_schema_extra}


def from_environment(cls: type[R], **values: Any) -> R:
    """``cls`` with each field whose variable is set bound to it (``EnvVar``, read at launch; floats, which
    Dagster's EnvVar cannot carry, read now); every other field keeps its default."""
    for name, env in env_names(cls).items():
        if env not in os.environ or name in values:
            continue
        annotation = cls.model_fields[name].annotation
        if annotation in (float, "float"):
            values[name] = float(os.environ[env])
        elif annotation in (int, "int"):
            values[name] = EnvVar.int(env)
        else:
            values[name] = EnvVar(env)
    return cls(**values)


SIMULATOR_KIND = "simulator"  # generated here, then read as canonical; the file sources: sources.SOURCE_KINDS
BAD_ROW_MODES = ("quarantine", "fail")


class SourceResource(ConfigurableResource):
    """Where raw titles, users and watch events come from, and what to do with bad rows."""

    kind: str = setting("REC_DATA_SOURCE", SIMULATOR_KIND, "simulator (embedded, default), movielens or canonical.")
    data_dir: str = setting("REC_DATA_DIR", "", "the directory of a movielens or canonical source.")
    simulator_preset: str = setting("REC_SIM_PRESET", "default", "tiny, default or large.")
    simulator_seed: int = setting("REC_SIM_SEED", 0, "the simulator's seed.")
    home: str = setting("REC_HOME", "", "where generated sources are cached.")
    bad_rows: str = setting("REC_BAD_ROWS", "quarantine", "quarantine bad rows into rejected_rows, or fail.")
    max_rejected_share: float = setting(
        "REC_MAX_REJECTED_SHARE", 0.01,
        "above this share of rejected events (bad rows and cascades from rejected titles), a blocking check fails.",
    )
    earliest_event: str = setting(
        "REC_EARLIEST_EVENT", DEFAULT_EARLIEST_EVENT,
        "events and tags before this day (YYYY-MM-DD, UTC) are quarantined as implausible_timestamp.",
    )
    future_slack_days: int = setting(
        "REC_FUTURE_SLACK_DAYS", DEFAULT_FUTURE_SLACK_DAYS,
        "events and tags later than the run's clock plus this many days are quarantined as future.",
    )

    def timestamp_bounds(self, now: datetime | None = None) -> TimestampBounds:
        """The plausible range of timestamps for a run whose clock reads ``now`` (default: the current time)."""
        return TimestampBounds.for_run(now or datetime.now(timezone.utc), self.earliest_event, self.future_slack_days)

    def home_path(self) -> Path:
        return Path(self.home).resolve() if self.home else rec_home()

    def open(self):
        """The source object (pure code) this configuration names; generates the simulator's data once."""
        if self.kind != SIMULATOR_KIND and self.kind not in SOURCE_KINDS:
            kinds = ", ".join((SIMULATOR_KIND, *SOURCE_KINDS))
            raise ValueError(f"REC_DATA_SOURCE={self.kind!r} is not one of {kinds}")
        if self.bad_rows not in BAD_ROW_MODES:
            raise ValueError(f"REC_BAD_ROWS={self.bad_rows!r} is not one of {', '.join(BAD_ROW_MODES)}")
        if self.kind == SIMULATOR_KIND:
            config = config_for(self.simulator_preset, self.simulator_seed)
            source = CanonicalSource(ensure_generated(config, self.home_path() / "sources"))
            source.name = f"simulator:{config.preset}"
            return source
        if not self.data_dir:
            raise ValueError(f"REC_DATA_SOURCE={self.kind} needs REC_DATA_DIR, the directory holding its files")
        return open_source(self.kind, Path(self.data_dir))

    def event_span(self) -> tuple[date, date]:
        """First event day and last event day (exclusive), without generating simulated data."""
        if self.kind == SIMULATOR_KIND:
            return simulator_span(config_for(self.simulator_preset, self.simulator_seed))
        return self.open().event_span(self.timestamp_bounds())


WINDOWS = WindowLengths()  # the split library's defaults


class WindowsResource(ConfigurableResource):
    """Lengths of the four time windows of a scoring week (docs/design.md, "Windows"), in days."""

    history_days: int = setting("REC_HISTORY_DAYS", WINDOWS.history_days, "X and X' (2 years by default).")
    label_days: int = setting("REC_LABEL_DAYS", WINDOWS.label_days, "Y, the training labels before the scoring week.")
    recent_popularity_days: int = setting("REC_RECENT_POPULARITY_DAYS", WINDOWS.recent_popularity_days,
                                          "short popularity window.")
    first_scoring_week: str = setting("REC_FIRST_WEEK", "", "first scoring week (a Monday); default: the source's "
                                      "first week.")
    min_labelled_users: int = setting(
        "REC_MIN_LABELLED_USERS", 20,
        "a week is trained and evaluated only when at least this many users have an event in Y and at least this "
        "many in Y'.",
    )


# Logged when a DuckDB connection closes, so a run's log shows who held the file and for how long. Dagster's pool
# serialises writer steps, but on the default SQLite instance its slot claim can admit two steps at once (SQLite
# ignores SELECT ... FOR UPDATE); the file lock is what makes writers take turns, and this line shows it.
WAREHOUSE_CONNECTION_LOG = ("DuckDB warehouse {mode} connection: waited {waited:.2f} s for the file lock, held it "
                            "{held:.2f} s (opened {opened:.6f}, closed {closed:.6f}, epoch seconds)")


class WarehouseResource(ConfigurableResource):
    """The tables. By default the DuckDB file, one writer at a time: connections wait for the lock instead of
    failing. With ``REC_TABLE_STORE`` a path or ``s3://`` URI, Parquet files per partition there, read through
    DuckDB views, so several workers share them with no lock (``rec_assets.storage.parquet``)."""

    database: str = setting("REC_DUCKDB", "", "the DuckDB file (default REC_HOME/warehouse.duckdb).")
    lock_timeout_s: float = Field(default=900.0, description="How long a connection waits for another writer.")
    table_store: str = setting(
        "REC_TABLE_STORE", "",
        "'duckdb' (the DuckDB file, default), or a shared path or s3://bucket/prefix holding every table as Parquet "
        "files per partition. Empty: REC_TABLE_STORE, else duckdb.",
    )
    object_store_client: str = setting(
        "REC_OBJECT_STORE_CLIENT", "auto",
        "how an s3:// table store is reached: httpfs (DuckDB's extension), pyarrow (pyarrow.fs.S3FileSystem) or "
        "auto (httpfs when it loads without installing, else pyarrow).",
    )
    # S3 credentials for an s3:// table store, bound with EnvVar at launch (from_environment, or a deployment's
    # own EnvVar("...") names), so Dagster shows the variable's name, never its value. Empty: the process's
    # AWS_* variables, then the AWS credential chain (IRSA web identity, instance profile, ~/.aws).
    aws_access_key_id: str = setting("AWS_ACCESS_KEY_ID", "", "S3 key id (with the secret below).", secret=True)
    aws_secret_access_key: str = setting("AWS_SECRET_ACCESS_KEY", "", "S3 secret key.", secret=True)
    aws_session_token: str = setting("AWS_SESSION_TOKEN", "", "S3 session token (temporary keys).", secret=True)
    aws_region: str = setting("AWS_REGION", "", "the bucket's region.")
    aws_endpoint_url: str = setting("AWS_ENDPOINT_URL", "", "an S3-compatible endpoint (MinIO, moto), else AWS.")

    def aws_settings(self) -> AwsSettings:
        """The fields, each empty one from the process's AWS_* variables (keys as a pair)."""
        given = AwsSettings(self.aws_access_key_id or None, self.aws_secret_access_key,
                            self.aws_session_token or None, self.aws_region or None, self.aws_endpoint_url or None)
        return given.over(AwsSettings.from_environment())

    def store_setting(self) -> str:
        """The field; else the DuckDB file when one is named explicitly; else REC_TABLE_STORE; else duckdb."""
        if self.table_store:
            return self.table_store
        if self.database:
            return DUCKDB_STORE
        return os.environ.get("REC_TABLE_STORE") or DUCKDB_STORE

    def parquet_store(self) -> TableStore | None:
        """The Parquet table store, or None when the tables live in the DuckDB file."""
        configured = self.store_setting()
        if is_duckdb_store(configured):
            return None
        return TableStore.from_setting(configured, self.object_store_client, self.aws_settings())

    def location(self) -> str:
        """Where the tables live: the DuckDB file's path, or the table store's path or URI."""
        store = self.parquet_store()
        return str(self.path()) if store is None else store.location

    def path(self) -> Path:
        return Path(self.database).resolve() if self.database else rec_home() / "warehouse.duckdb"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file's lock (backfills run in parallel).
        On a Parquet table store: an in-memory connection with a view per table (no lock to wait for)."""
        store = self.parquet_store()
        if store is not None:
            with store.connect() as conn:
                yield conn
            return
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():
            read_only = False  # a read-only connection cannot create the file
        asked = time.time()
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(str(path), read_only=read_only)
                opened = time.time()
                break
            except duckdb.IOException as error:
                if "lock" in str(error).lower() and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 1.5, 2.0)
                    continue
                if "lock" in str(error).lower():
                    raise
                raise ValueError(f"{path} cannot be opened as a DuckDB warehouse: {error}") from error
        try:
            require_warehouse(conn, path, WAREHOUSE_TABLES)
            yield conn
        finally:
            # Stamped before close so that the next holder's "opened" is never earlier than this "closed".
            closed = time.time()
            conn.close()
            dg.get_dagster_logger().info(WAREHOUSE_CONNECTION_LOG.format(
                mode="read-only" if read_only else "read-write", waited=opened - asked, held=closed - opened,
                opened=opened, closed=closed))


class ArtifactsResource(ConfigurableResource):
    """Files that are not tables: feature arrays, checkpoints, figures, caches."""

    root: str = setting("REC_ARTIFACTS", "", "default REC_HOME/artifacts.")

    def path(self, *parts: str) -> Path:
        base = Path(self.root).resolve() if self.root else rec_home() / "artifacts"
        return base.joinpath(*parts)


class ArtifactRefsIOManager(dg.ConfigurableIOManagerFactory):
    """The small references (artifact paths and hashes) assets pass each other, pickled one file per partition
    under the artifacts root (``refs/``): a run with its own ``REC_ARTIFACTS`` never reads or overwrites another
    root's references, and the root is read when a run starts, not when the code loads."""

    artifacts: ArtifactsResource

    def create_io_manager(self, context: dg.InitResourceContext):
        return dg.FilesystemIOManager(base_dir=str(self.artifacts.path(REFS_FOLDER))).create_io_manager(context)


# The training library's defaults; the fields below that differ are sized for the platform's 2-core CPU.
TRAIN = TrainConfig()


class TrainingResource(ConfigurableResource):
    """Training settings shared by every variant (section 3 of the paper; sizes chosen for a 2-core CPU)."""

    epochs: int = setting("REC_EPOCHS", 6, "at most this many epochs (early stopping may end sooner).")
    batch_size: int = Field(default=512, description="Positives per batch.")
    negative_rate: int = Field(default=TRAIN.negative_rate, description="bce: negatives per positive (1..30).")
    learning_rate: float = Field(default=TRAIN.learning_rate)
    embedding_dim: int = Field(default=512, description="User and item embedding size.")
    history_len: int = Field(default=50, description="Last L titles of the history read by the user tower.")
    patience: int = Field(default=1, description="Epochs without a validation improvement before stopping.")
    loss: str = setting("REC_LOSS", TRAIN.loss, "sampled_softmax (in-batch + uniform negatives, logQ-corrected) "
                        "or bce (the paper's, negative_rate uniform negatives).")
    next_watch_per_user: int = Field(default=TRAIN.next_watch_per_user, description="Examples drawn from X per user "
                                     "and epoch besides the Y labels, among the last next_watch_recent (0: Y only, "
                                     "the paper's setup; -1: all of them within max_history_examples).")
    max_history_examples: int = Field(default=TRAIN.max_history_examples, description="At most this many examples "
                                      "from X per epoch: the largest equal per-user cap that fits (0: no budget).")
    next_watch_recent: int = Field(default=TRAIN.next_watch_recent, description="Only each user's last N "
                                   "watches of X are examples (0: every watch).")
    history_view: str = Field(default=TRAIN.history_view, description="What the user tower reads for an example "
                              "from X: leave_one_out (every other watch) or next_watch (the watches before it).")
    id_dropout: float = Field(default=TRAIN.id_dropout, description="Share of each batch's titles trained as cold "
                              "ones: ID zeroed, popularity bins replaced by no_views (DropoutNet).")
    modality_dropout: float = Field(default=TRAIN.modality_dropout, description="Probability of dropping each "
                                    "metadata type of a title in training (one type always stays).")
    seed: int = setting("REC_SEED", TRAIN.seed, "same seed, same weights.")
    device: str = setting("REC_DEVICE", "cpu", "cpu, cuda or auto.")
    threads: int = Field(default=2, description="torch CPU threads per training step.")

    def train_config(self) -> TrainConfig:
        fields = type(self).model_fields
        return TrainConfig(**{name: getattr(self, name) for name in TrainConfig.__dataclass_fields__ if name in fields})


def resolved(resource: ConfigurableResource) -> ConfigurableResource:
    """The resource with its EnvVar fields read now (for code outside a run, e.g. partitions)."""
    return resource.process_config_and_initialize()


@dg.definitions
def resources() -> dg.Definitions:
    """Every resource of the code location, each setting bound to its environment variable where set."""
    # Imported here: the asset modules import this one for the resource classes.
    from rec_assets.defs.distributed import DistributedTrainingResource
    from rec_assets.defs.evaluation import EvaluationResource
    from rec_assets.defs.features import FeaturesResource

    return dg.Definitions(
        resources={
            "source": from_environment(SourceResource),
            "windows": from_environment(WindowsResource),
            "warehouse_db": from_environment(WarehouseResource),
            "artifacts": from_environment(ArtifactsResource),
            "features": from_environment(FeaturesResource),
            "training": from_environment(TrainingResource),
            "evaluation": from_environment(EvaluationResource),
            "distributed_training": from_environment(DistributedTrainingResource),
            "pipes_client": dg.PipesSubprocessClient(),
            "io_manager": ArtifactRefsIOManager(artifacts=from_environment(ArtifactsResource)),
        }
    )
