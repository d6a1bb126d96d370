"""The Parquet table store on S3 through pyarrow's S3FileSystem, against moto's S3 server on 127.0.0.1.

The hand-made week of ``test_parquet_store`` is written once to a local directory and once to a bucket
(``REC_OBJECT_STORE_CLIENT=pyarrow``, dummy keys in the AWS_* variables): the same rows and column types must
come back. Re-writing a partition replaces its object, removing one deletes it, and no credential value
shows in Dagster's events, logs, output or error text.
Run: ``.venv/bin/python -m pytest rec_assets_tests/storage/test_s3_store.py``.
"""

import logging
import os
import traceback
import uuid
from datetime import date, datetime

import dagster as dg
import pandas as pd
import pytest

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from rec_assets.defs.resources import WarehouseResource, from_environment, resolved
from rec_assets.sqlmodels.runner import discover_models, materialize_partition
from rec_assets.storage.object_store import ObjectStoreError
from rec_assets.storage.parquet import TableStore, client_name, store_of
from rec_assets.storage.tables import record_rejected, replace_events, replace_week_rows
from rec_assets_tests.split.test_split_models import WEEK
from rec_assets_tests.storage.test_parquet_store import events_frame, snapshot, split_week, store  # noqa: F401

CREDENTIALS = {"AWS_ACCESS_KEY_ID": f"AKIDTEST{uuid.uuid4().hex[:12].upper()}",
               "AWS_SECRET_ACCESS_KEY": f"secret-{uuid.uuid4().hex}",
               "AWS_SESSION_TOKEN": f"token-{uuid.uuid4().hex}"}
EXTRA_TABLES = ["rejected_rows", "raw_users", "weekly_recommendations"]
OTHER_WEEK = date(2025, 3, 10)


@pytest.fixture(scope="module")
def s3_server():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def bucket(s3_server, monkeypatch) -> str:
    """A fresh bucket, and the AWS_* variables pointing at the server with dummy keys."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**CREDENTIALS, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server,
                        "AWS_EC2_METADATA_DISABLED": "true", "REC_OBJECT_STORE_CLIENT": "pyarrow"}.items():
        monkeypatch.setenv(name, value)
    name = f"rec-{uuid.uuid4().hex[:12]}"
    s3().create_bucket(Bucket=name)
    return name


def s3():
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")


def keys(bucket: str) -> list[str]:
    """The Parquet objects (pyarrow leaves an empty ``<folder>/`` marker where it deleted a folder's last file)."""
    objects = s3().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in objects if o["Key"].endswith(".parquet"))


class LogText(logging.Handler):
    """Every record logged anywhere, as text (caplog with capfd keeps Dagster's closed databases alive)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def count(conn, relation: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]  # fetched to the end (DuckDB 2)


def write_week(conn) -> None:
    """Every write path: snapshots, events by week, split models, set rows, week rows of a result table."""
    split_week(conn)
    rejected = pd.DataFrame({"file": ["events.csv"] * 2, "line": [5, 6], "reason": ["bad", "dup"], "raw": ["x", None]})
    record_rejected(conn, "events", rejected)
    record_rejected(conn, "events", rejected)  # seen again: stored once
    record_rejected(conn, "titles", rejected.head(1))
    for week in (WEEK, OTHER_WEEK):
        rows = pd.DataFrame({"scoring_week": [week] * 2, "user_id": [1, 2], "score": [0.5, 0.25],
                             "at": [datetime(2025, 3, 1, 12, 30)] * 2})
        replace_week_rows(conn, "weekly_recommendations", week.isoformat(), rows)


def contents(conn) -> dict:
    extra = {t: (conn.execute(f'DESCRIBE "{t}"').fetchall(),
                 conn.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall()) for t in EXTRA_TABLES}
    return {**snapshot(conn), "extra": extra}


def test_a_week_on_s3_reads_back_as_from_a_local_directory(bucket, store):  # noqa: F811 (the fixture)
    s3_store = TableStore.from_setting(f"s3://{bucket}/rec/tables", "pyarrow")
    with store.connect() as conn:
        write_week(conn)
    with store.connect() as conn:
        local = contents(conn)
    with s3_store.connect() as conn:
        assert client_name(conn) == "pyarrow"
        write_week(conn)
    with s3_store.connect() as conn:  # a fresh reader sees only what is in the bucket
        remote = contents(conn)
    assert remote == local
    types = dict(r[:2] for r in remote["types"]["raw_watch_events"])
    assert types == {"user_id": "BIGINT", "title_id": "BIGINT", "ts": "TIMESTAMP", "event_week": "DATE"}
    assert [r[:2] for r in remote["extra"]["weekly_recommendations"][0]] == [
        ("scoring_week", "DATE"), ("user_id", "BIGINT"), ("score", "DOUBLE"), ("at", "TIMESTAMP")]
    assert len(remote["extra"]["rejected_rows"][1]) == 3
    stored = keys(bucket)
    assert "rec/tables/raw_titles/part-0.parquet" in stored
    assert "rec/tables/weekly_recommendations/scoring_week=2025-03-10/part-0.parquet" in stored
    assert sum(k.startswith("rec/tables/rejected_rows/kind=events/") for k in stored) == 1


def test_rewriting_a_partition_replaces_it_and_removing_one_deletes_it(bucket, tmp_path):
    s3_store = TableStore.from_setting(f"s3://{bucket}/rec")
    prefix = "rec/raw_watch_events/event_week="
    with s3_store.connect() as conn:
        assert client_name(conn) == "pyarrow"  # auto: httpfs does not load here
        replace_events(conn, events_frame(), None, None)
        replace_events(conn, events_frame(), None, None)  # the same weeks again: no duplicates
        assert count(conn, "raw_watch_events") == len(events_frame())
        assert f"{prefix}2025-03-03/part-0.parquet" in keys(bucket)
        assert replace_events(conn, events_frame().iloc[:0], datetime(2025, 3, 3), datetime(2025, 3, 10)) == (3, 0)
        assert f"{prefix}2025-03-03/part-0.parquet" not in keys(bucket)  # deleted, not emptied
        assert count(conn, "raw_watch_events WHERE event_week = '2025-03-03'") == 0

        frame = pd.DataFrame({"scoring_week": [WEEK, WEEK], "user_id": [1, 2], "score": [0.5, 0.25]})
        assert replace_week_rows(conn, "weekly_recommendations", WEEK.isoformat(), frame) == (0, 2)
        assert replace_week_rows(conn, "weekly_recommendations", WEEK.isoformat(), frame.head(1)) == (2, 1)
        assert count(conn, "weekly_recommendations") == 1

        models_dir = tmp_path / "models"  # changed model columns retire the other weeks' objects
        models_dir.mkdir()
        (models_dir / "daily.sql").write_text("SELECT $scoring_week::DATE AS scoring_week, 1 AS n")
        for week in (WEEK, OTHER_WEEK):
            materialize_partition(conn, discover_models(models_dir)["daily"], {"scoring_week": week})
        (models_dir / "daily.sql").write_text("SELECT $scoring_week::DATE AS scoring_week, 1 AS n, 2 AS m")
        materialize_partition(conn, discover_models(models_dir)["daily"], {"scoring_week": WEEK})
        assert conn.execute("SELECT * FROM daily").fetchall() == [(WEEK, 1, 2)]
    daily = [k for k in keys(bucket) if k.startswith("rec/daily/")]
    assert daily == ["rec/daily/scoring_week=2025-03-03/part-0.parquet"]


def materialized_texts(bucket: str) -> list[str]:
    """The event log, run config and metadata of a week written through the Dagster resource, then of a failed
    write (no such bucket). A function of its own: its instance is gone once it returns."""
    @dg.asset(partitions_def=dg.StaticPartitionsDefinition([WEEK.isoformat()]))
    def week_rows(context: dg.AssetExecutionContext, warehouse_db: WarehouseResource) -> dg.MaterializeResult:
        frame = pd.DataFrame({"scoring_week": [WEEK], "user_id": [1], "score": [0.5]})
        with warehouse_db.connect() as conn:
            _, inserted = replace_week_rows(conn, "weekly_recommendations", context.partition_key, frame)
            read = conn.execute("SELECT * FROM weekly_recommendations").fetchall()
            context.log.info(f"wrote {inserted} through {client_name(conn)}: {store_of(conn)!r}")
        return dg.MaterializeResult(metadata={"location": warehouse_db.location(), "rows": len(read)})

    texts, outcomes = [], []
    instance = dg.DagsterInstance.ephemeral()
    for table_store in (f"s3://{bucket}/rec", f"s3://missing-{bucket}/rec"):
        resources = {"warehouse_db": from_environment(WarehouseResource, table_store=table_store)}
        result = dg.materialize([week_rows], partition_key=WEEK.isoformat(), raise_on_error=False,
                                resources=resources, instance=instance)
        outcomes.append(result.success)
        texts += [repr(record) for record in instance.all_logs(result.run_id)]
        texts += [repr(result.dagster_run.run_config), repr(result.get_asset_materialization_events())]
    assert outcomes == [True, False]
    return texts


def error_text(bucket: str) -> str:
    """The whole traceback of a write to a missing bucket through ``WarehouseResource.connect``."""
    warehouse = resolved(from_environment(WarehouseResource, table_store=f"s3://missing-{bucket}/rec"))
    with warehouse.connect() as conn:
        text = repr(store_of(conn)) + repr(store_of(conn).client(conn))
        with pytest.raises(ObjectStoreError, match="REC_OBJECT_STORE_CLIENT=pyarrow: cannot write") as raised:
            replace_week_rows(conn, "weekly_recommendations", WEEK.isoformat(),
                              pd.DataFrame({"scoring_week": [WEEK], "user_id": [1]}))
    return text + "".join(traceback.format_exception(raised.value))


def test_no_credential_shows_in_events_logs_or_errors(bucket, capfd):
    unresolved = from_environment(WarehouseResource, table_store=f"s3://{bucket}/rec")
    assert isinstance(unresolved.object_store_client, dg.EnvVar)  # the UI shows the variable's name
    warehouse = resolved(unresolved)
    assert warehouse.object_store_client == "pyarrow"
    logged = LogText()
    logging.getLogger().addHandler(logged)
    try:
        texts = [repr(unresolved), repr(warehouse), *materialized_texts(bucket), error_text(bucket)]
    finally:
        logging.getLogger().removeHandler(logged)
    assert any("REC_OBJECT_STORE_CLIENT=pyarrow: cannot" in t for t in texts)  # errors name the client
    captured = capfd.readouterr()
    text = "\n".join([*texts, *logged.lines, captured.out, captured.err])
    assert "weekly_recommendations" in text and "s3://" in text
    for name, value in CREDENTIALS.items():
        assert value not in text, f"{name}'s value leaked"


def test_keys_bound_with_envvar_under_other_names_reach_the_bucket_and_never_show(bucket, monkeypatch, capfd):
    """A deployment names its own secret variables: the resource's fields take ``EnvVar("...")``, read at launch;
    with no AWS_* key in the process, those are the keys the store signs with."""
    for name, value in CREDENTIALS.items():
        monkeypatch.delenv(name)
        monkeypatch.setenv(f"TABLES_{name}", value)
    unresolved = WarehouseResource(table_store=f"s3://{bucket}/rec", object_store_client="pyarrow",
                                   **{field: dg.EnvVar(f"TABLES_{name}") for field, name in (
                                       ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                                       ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                                       ("aws_session_token", "AWS_SESSION_TOKEN"))})
    warehouse = resolved(unresolved)
    aws = warehouse.aws_settings()
    assert (aws.key_id, aws.secret, aws.session_token) == tuple(CREDENTIALS[n] for n in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    with warehouse.connect() as conn:
        replace_week_rows(conn, "weekly_recommendations", WEEK.isoformat(),
                          pd.DataFrame({"scoring_week": [WEEK], "user_id": [1], "score": [0.5]}))
    assert "rec/weekly_recommendations/scoring_week=2025-03-03/part-0.parquet" in keys(bucket)
    text = "\n".join([repr(unresolved), repr(warehouse), repr(aws), repr(warehouse.parquet_store()),
                      *capfd.readouterr()])
    for name, value in CREDENTIALS.items():
        assert value not in text, f"{name}'s value leaked"


def test_keys_given_to_the_resource_are_never_paired_with_a_secret_from_elsewhere():
    from rec_assets.storage.object_store import AwsSettings

    process = AwsSettings("AKIDPROCESS", "process-secret", "process-token", "eu-west-1", "http://127.0.0.1:9")
    given = AwsSettings("AKIDGIVEN", "given-secret", None, None, None).over(process)
    assert (given.key_id, given.secret, given.session_token) == ("AKIDGIVEN", "given-secret", None)
    assert (given.region, given.endpoint) == ("eu-west-1", "http://127.0.0.1:9")
    assert AwsSettings().over(process) == process
