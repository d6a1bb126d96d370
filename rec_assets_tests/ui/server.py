"""Start `make ui` (``python -m rec_assets.cli ui``, i.e. ``dg dev``: webserver, daemon, code server) for a test.

The servers run in their own session (process group) on 127.0.0.1 and a free port, with the environment the
test gives them; every wait is bounded, and the whole group is stopped on the way out (SIGINT, then SIGKILL).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
from rec_assets.cli.local_services import HOST, default_signals, free_port, stop_group

LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@dataclass
class DagsterUI:
    url: str
    graphql_url: str
    log_path: Path
    process: subprocess.Popen

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60.0) -> dict:
        response = requests.post(self.graphql_url, json={"query": query, "variables": variables or {}},
                                 timeout=timeout)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def prepare_dagster_home(dagster_home: Path) -> Path:
    """A Dagster instance directory holding the project's dagster.yaml (as `make ui` prepares it)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    return dagster_home


def _wait_until_loaded(ui: DagsterUI, deadline: float) -> None:
    last = "no answer"
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            raise RuntimeError(f"the UI exited with {ui.process.returncode}:\n{ui.log_tail()}")
        try:
            entries = ui.graphql(LOCATION_QUERY, timeout=10)["workspaceOrError"]["locationEntries"]
            statuses = [(e["loadStatus"], e["locationOrLoadError"]) for e in entries]
            if entries and all(status == "LOADED" for status, _ in statuses):
                errors = [error for _, error in statuses if error and error["__typename"] == "PythonError"]
                if errors:
                    raise RuntimeError(f"the code location failed to load: {errors}")
                return
            last = str(statuses)
        except requests.RequestException as error:
            last = str(error)
        time.sleep(1.0)
    raise TimeoutError(f"the UI did not load the code location in time ({last}):\n{ui.log_tail()}")


@contextmanager
def dagster_ui(env: dict[str, str], log_path: Path, startup_timeout_s: float = 180.0) -> Iterator[DagsterUI]:
    """`make ui` on a free loopback port with ``env`` (which names DAGSTER_HOME and REC_HOME); yields once the
    code location is loaded, stops every process it started on exit."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rec_assets.cli", "ui", "--host", HOST, "--port", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=default_signals,
        )
    ui = DagsterUI(f"http://{HOST}:{port}", f"http://{HOST}:{port}/graphql", log_path, process)
    try:
        _wait_until_loaded(ui, time.monotonic() + startup_timeout_s)
        yield ui
    finally:
        stop_group(process, signal.SIGINT)
