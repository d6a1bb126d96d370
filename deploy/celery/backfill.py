"""A backfill of scoring weeks on Celery workers, on this machine: Redis, workers, daemon, webserver, all on loopback.

    python deploy/celery/backfill.py --work DIR --weeks 2026-10-12 2026-10-19 2026-11-02 [--workers 2]

(``make celery-backfill`` runs it with ``CELERY_ARGS``.) What it starts, every process in its own session so
that it can be stopped whole, and stops on the way out (SIGTERM, then SIGKILL after a grace period):

1. ``redis-server`` on 127.0.0.1 and a free port, no persistence (the broker and the result backend);
2. ``--workers`` Celery workers (``dagster-celery worker start -A dagster_celery.app -y worker.yaml``), one
   process each (``--pool=solo``: one step at a time, in the worker's own process), named ``rec<i>@<host>``;
3. ``dagster dev -f deploy/celery/definitions.py`` (webserver, daemon, code server) on a fresh instance holding
   the project's ``dagster.yaml`` (run queue of 3).

Then, through the GraphQL API: one run of ``ingest_history`` over every event week (the range tags, as the CLI
does), and a partition backfill of ``materialize_scoring_week`` (or ``--job``) over ``--weeks``, which the
daemon queues and runs up to three at a time; each run's steps are Celery tasks that the workers execute.
Every process shares ``REC_HOME`` (artifacts), the Parquet table store ``REC_TABLE_STORE`` (no DuckDB file
lock) and ``DAGSTER_HOME``; the simulator preset and other ``REC_*`` settings come from the caller's
environment. The summary (runs, statuses, which worker ran which step, wall times) is printed as JSON and
written to ``--report`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from rec_assets.cli.local_services import BACKFILL_STATUS, HOST, default_signals, free_port, stop_group

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
DEFINITIONS = HERE / "definitions.py"
WORKER_CONFIG = HERE / "worker.yaml"
REPOSITORY = "__repository__"
INGEST_JOB = "ingest_history"
SCORING_WEEK_JOB = "materialize_scoring_week"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
UNFINISHED = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")

LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""
RUN_STATUS = """
query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } ... on PythonError { message } } }
"""
@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")


def start(name: str, args: list[str], env: dict[str, str], log_path: Path, stop_signal: int = signal.SIGTERM) -> Service:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_signals)
    return Service(name, process, log_path, stop_signal)


def stop(service: Service, grace_s: float = 30.0) -> None:
    """The service's signal to its whole process group, SIGKILL to what is left after the grace period."""
    stop_group(service.process, service.stop_signal, grace_s)


def _wait(condition, what: str, timeout_s: float, services: list[Service], interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for service in services:
            service.alive()
        answer = condition()
        if answer:
            return answer
        time.sleep(interval_s)
    tails = "\n".join(f"--- {s.name}:\n{s.log_tail()}" for s in services)
    raise TimeoutError(f"{what} not within {timeout_s:.0f} s\n{tails}")


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(work: Path, port: int | None = None) -> Iterator[tuple[Service, int]]:
    """Debian's redis-server on 127.0.0.1 only, no snapshots, no append-only file."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (make celery-deps)")
    port = port or free_port()
    data = work / "redis"
    data.mkdir(parents=True, exist_ok=True)
    service = start("redis-server", [binary, "--port", str(port), "--bind", HOST, "--protected-mode", "yes",
                                     "--save", "", "--appendonly", "no", "--dir", str(data)],
                    dict(os.environ), work / "logs" / "redis.log")
    try:
        _wait(lambda: redis_ping(port), "redis-server answering PING", 30, [service])
        yield service, port
    finally:
        stop(service)


def venv_bin() -> Path:
    return Path(sys.executable).parent


def worker_env(env: dict[str, str]) -> dict[str, str]:
    # `dagster-celery worker start` runs `celery` from PATH: the interpreter's bin directory goes first.
    return {**env, "PATH": f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"}


@contextmanager
def celery_workers(env: dict[str, str], count: int, logs: Path) -> Iterator[list[Service]]:
    """``count`` worker processes consuming the queue ``dagster``, each running one step at a time in its own
    process (``--pool=solo``: prefork's pool processes are daemonic, and a daemonic process may not start the
    DataLoader workers that the cover-art encoder uses)."""
    workers: list[Service] = []
    try:
        for index in range(1, count + 1):
            args = [str(venv_bin() / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                    "-y", str(WORKER_CONFIG), "-n", f"rec{index}", "-l", "INFO", "--",
                    "--pool=solo", "--without-gossip", "--without-mingle"]
            workers.append(start(f"celery worker rec{index}", args, worker_env(env), logs / f"worker{index}.log"))
        for worker in workers:
            _wait(lambda w=worker: " ready." in w.log_tail(100_000), f"{worker.name} ready", 180, workers, 1.0)
        yield workers
    finally:
        for worker in workers:
            stop(worker)


@dataclass
class Dagster:
    service: Service
    url: str
    location: str = ""

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60.0) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=timeout)
        response.raise_for_status()
        body = response.json()
        if "errors" in body:
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]


@contextmanager
def dagster_dev(env: dict[str, str], logs: Path, startup_timeout_s: float = 300) -> Iterator[Dagster]:
    """``dagster dev`` (webserver, daemon, code server) on the Celery code location, loopback only."""
    port = free_port()
    args = [str(venv_bin() / "dagster"), "dev", "-f", str(DEFINITIONS), "-h", HOST, "-p", str(port)]
    service = start("dagster dev", args, worker_env(env), logs / "dagster_dev.log", stop_signal=signal.SIGINT)
    dagster = Dagster(service, f"http://{HOST}:{port}")

    def loaded() -> str | None:
        try:
            entries = dagster.graphql(LOCATIONS, timeout=10)["workspaceOrError"]["locationEntries"]
        except (requests.RequestException, RuntimeError, KeyError, TypeError):
            return None
        if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
            return None
        errors = [e["locationOrLoadError"] for e in entries
                  if e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError"]
        if errors:
            raise RuntimeError(f"the Celery code location failed to load: {errors}")
        return entries[0]["name"]

    try:
        dagster.location = _wait(loaded, "the Celery code location loaded", startup_timeout_s, [service], 1.0)
        yield dagster
    finally:
        stop(service)


def launch_run(dagster: Dagster, job: str, tags: dict[str, str]) -> str:
    params = {"selector": {"repositoryLocationName": dagster.location, "repositoryName": REPOSITORY, "jobName": job},
              "runConfigData": QUIET, "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    answer = dagster.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launching {job} failed: {answer}")
    return answer["run"]["runId"]


def wait_for_run(dagster: Dagster, run_id: str, timeout_s: float, watch: list[Service]) -> str:
    def finished() -> str | None:
        status = dagster.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        return None if status in UNFINISHED else status

    return _wait(finished, f"run {run_id}", timeout_s, watch, 2.0)


def launch_backfill(dagster: Dagster, job: str, weeks: list[str]) -> str:
    params = {"selector": {"repositorySelector": {"repositoryLocationName": dagster.location,
                                                  "repositoryName": REPOSITORY},
                           "partitionSetName": f"{job}_partition_set"},
              "partitionNames": weeks, "runConfigData": QUIET, "fromFailure": False,
              "title": f"celery: {len(weeks)} scoring weeks"}
    answer = dagster.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launching the backfill failed: {answer}")
    return answer["backfillId"]


def wait_for_backfill(dagster: Dagster, backfill_id: str, expected_runs: int, timeout_s: float,
                      watch: list[Service]) -> dict:
    def finished() -> dict | None:
        backfill = dagster.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["__typename"] != "PartitionBackfill":
            raise RuntimeError(f"backfill {backfill_id}: {backfill}")
        unfinished = [r for r in backfill["runs"] if r["status"] in UNFINISHED]
        done = backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING")
        return backfill if done and not unfinished and len(backfill["runs"]) >= expected_runs else None

    return _wait(finished, f"backfill {backfill_id}", timeout_s, watch, 3.0)


def prepare_dagster_home(dagster_home: Path) -> Path:
    """A fresh instance directory holding the project's dagster.yaml (queued runs, 3 at once, the writer pool)."""
    from dagster import DagsterInstance

    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    # Create the SQLite storages once, here: processes that start together would race to migrate them.
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)
    return dagster_home


def environment(work: Path, broker_port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """What every process shares: REC_HOME (``work/rec_home``), the Parquet table store (``work/tables``), the
    instance (``work/dagster_home``) and the broker; other settings (``REC_SIM_PRESET``, ...) from ``base``."""
    env = dict(os.environ if base is None else base)
    env["REC_HOME"] = str(work / "rec_home")
    env["REC_TABLE_STORE"] = str(work / "tables")
    env["DAGSTER_HOME"] = str(prepare_dagster_home(work / "dagster_home"))
    env["REC_CELERY_BROKER"] = f"redis://{HOST}:{broker_port}/0"
    env["REC_CELERY_BACKEND"] = f"redis://{HOST}:{broker_port}/1"
    env.pop("REC_DUCKDB", None)  # an explicit DuckDB file would win over the table store
    return env


def step_workers(dagster_home: Path, run_ids: list[str]) -> dict[str, dict[str, str | None]]:
    """Run -> every step that started -> the Celery worker that executed it (None: not a Celery task), from the
    engine event each worker writes before it executes a step."""
    from dagster import DagsterEventType, DagsterInstance

    found: dict[str, dict[str, str | None]] = {}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for run_id in run_ids:
            steps: dict[str, str | None] = {}
            for entry in instance.all_logs(run_id, of_type={DagsterEventType.ENGINE_EVENT, DagsterEventType.STEP_START}):
                if not entry.step_key:
                    continue
                if entry.dagster_event_type == DagsterEventType.STEP_START:
                    steps.setdefault(entry.step_key, None)
                    continue
                worker = (entry.dagster_event.engine_event_data.metadata or {}).get("Celery worker")
                if worker is not None:
                    steps[entry.step_key] = str(getattr(worker, "value", worker))
            found[run_id] = steps
    return found


def run_celery_backfill(work: Path, weeks: list[str], ingest_range: tuple[str, str], workers: int = 2,
                        job: str = SCORING_WEEK_JOB, base_env: dict[str, str] | None = None,
                        timeout_s: float = 1500) -> dict:
    """Start everything, ingest, backfill ``weeks`` of ``job``, stop everything; the summary of what ran where."""
    work = work.resolve()
    logs = work / "logs"
    started = time.monotonic()
    deadline = started + timeout_s
    with ExitStack() as stack:
        redis, port = stack.enter_context(redis_server(work))
        env = environment(work, port, base_env)
        pool = stack.enter_context(celery_workers(env, workers, logs))
        dagster = stack.enter_context(dagster_dev(env, logs))
        watch = [redis, *pool, dagster.service]
        ready_s = time.monotonic() - started
        t0 = time.monotonic()
        ingest_id = launch_run(dagster, INGEST_JOB, {RANGE_START_TAG: ingest_range[0], RANGE_END_TAG: ingest_range[1]})
        ingest_status = wait_for_run(dagster, ingest_id, deadline - time.monotonic(), watch)
        ingest_s = time.monotonic() - t0
        if ingest_status != "SUCCESS":
            raise RuntimeError(f"ingestion run {ingest_id} ended {ingest_status}:\n{dagster.service.log_tail()}")
        t0 = time.monotonic()
        backfill_id = launch_backfill(dagster, job, weeks)
        backfill = wait_for_backfill(dagster, backfill_id, len(weeks), deadline - time.monotonic(), watch)
        backfill_s = time.monotonic() - t0
    runs = {r["runId"]: {"status": r["status"],
                         "week": next((t["value"] for t in r["tags"] if t["key"] == "dagster/partition"), None)}
            for r in backfill["runs"]}
    executed_by = step_workers(Path(env["DAGSTER_HOME"]), [ingest_id, *runs])
    return {
        "weeks": weeks, "job": job, "workers": workers, "broker": env["REC_CELERY_BROKER"],
        "rec_home": env["REC_HOME"], "table_store": env["REC_TABLE_STORE"], "dagster_home": env["DAGSTER_HOME"],
        "ingest_run": {"id": ingest_id, "status": ingest_status},
        "backfill": {"id": backfill_id, "status": backfill["status"], "runs": runs},
        "step_workers": executed_by,
        "wall_s": {"startup": round(ready_s, 1), "ingest": round(ingest_s, 1), "backfill": round(backfill_s, 1),
                   "total_with_stop": round(time.monotonic() - started, 1)},
        "logs": str(logs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="where REC_HOME, tables, instance and logs go")
    parser.add_argument("--weeks", nargs="+", required=True, help="scoring weeks to backfill")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--job", default=SCORING_WEEK_JOB)
    parser.add_argument("--report", type=Path, help="also write the summary here (JSON)")
    args = parser.parse_args(argv)
    from rec_assets.defs.partitions import SCORING_WEEKS  # reads the configured span (REC_SIM_PRESET, ...)

    keys = SCORING_WEEKS.get_partition_keys()
    summary = run_celery_backfill(args.work, args.weeks, (keys[0], keys[-1]), args.workers, args.job)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    ok = summary["backfill"]["status"] == "COMPLETED_SUCCESS" and all(
        r["status"] == "SUCCESS" for r in summary["backfill"]["runs"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
