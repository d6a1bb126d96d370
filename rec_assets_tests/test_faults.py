"""A `make run` killed with SIGKILL in the middle of a write (``REC_CRASH_AT``, ``rec_assets/faults.py``): during
ingestion, a split model's write, a feature artifact's write, a checkpoint save and the recommendations write.

After each crash every table and artifact of the earlier week is unchanged, the killed week holds its previous
version (an uninterrupted run of it came first) or nothing, never a half, and the next run of the week completes
and equals the uninterrupted one: every table's rows, every feature artifact's and checkpoint's sha256. ``REC_FAULTS_REPORT=<file>`` also writes what was injected and found as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from rec_assets.storage.hashing import directory_sha256, file_sha256

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

PROJECT = Path(__file__).resolve().parents[1]
EARLIER, WEEK = "2026-10-19", "2026-11-02"  # two scoring weeks of the tiny preset, the later one killed
# (fault class, crash point): each point is where a write is half done; see rec_assets/faults.py.
FAULTS = [
    ("ingestion", "table:raw_watch_events"),
    ("split model write", "table:split_windows"),
    ("feature artifact write", "artifact:cover_art"),
    ("checkpoint save", "checkpoint"),
    ("recommendations write", "table:weekly_recommendations"),
]
SNAPSHOT_TABLES = ("raw_titles", "raw_users", "raw_watch_events", "raw_title_tags", "rejected_rows")
FEATURE_KINDS = ("categorical", "synopsis", "cover_art")


def run_week(home: Path, week: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REC_", "DAGSTER_"))}
    # One epoch: what a crash leaves does not depend on how long the towers train, and it keeps `make test` short.
    env.update(REC_HOME=str(home), REC_SIM_PRESET="tiny", REC_EPOCHS="1")
    if crash_at:
        env["REC_CRASH_AT"] = crash_at
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rec_assets.cli", "run", "--week", week], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=1800)
    done.seconds = round(time.monotonic() - started, 1)
    return done


def table_rows(home: Path) -> dict[str, dict[str, list]]:
    """Table -> week (or "all" for snapshots and the events) -> its rows, sorted, without run ids (a re-run has
    new ones by design)."""
    found: dict[str, dict[str, list]] = {}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        for (table,) in conn.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall():
            columns = [c for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $t ORDER BY ordinal_position",
                {"t": table}).fetchall() if not c.endswith("run_id")]
            rows = conn.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY ALL').fetchall()
            if table in SNAPSHOT_TABLES or "scoring_week" not in columns:
                found[table] = {"all": rows}
                continue
            at = columns.index("scoring_week")
            for row in rows:
                found.setdefault(table, {}).setdefault(str(row[at]), []).append(row)
    return found


def artifact_hashes(home: Path, week: str) -> dict[str, str | None]:
    """Each feature artifact and checkpoint of ``week``: its content hash, or None when it is absent."""
    artifacts = home / "artifacts"
    hashes: dict[str, str | None] = {}
    for kind in FEATURE_KINDS:
        directory = artifacts / "features" / kind / week
        hashes[f"features/{kind}"] = directory_sha256(directory) if directory.is_dir() else None
    for variant_dir in sorted((artifacts / "checkpoints").glob("*")):
        checkpoint = variant_dir / f"{week}.pt"
        hashes[f"checkpoints/{variant_dir.name}"] = file_sha256(checkpoint) if checkpoint.exists() else None
    return hashes


def week_state(tables: dict[str, dict[str, list]], week: str) -> dict[str, list]:
    return {table: weeks.get(week, []) for table, weeks in tables.items() if "all" not in weeks}


def rows_lost(before: dict[str, dict[str, list]], after: dict[str, dict[str, list]], keys: list[str]) -> int:
    """Rows of ``before`` (for the weeks ``keys``) that ``after`` no longer holds."""
    lost = 0
    for table, weeks in before.items():
        for key in keys:
            kept = {repr(row) for row in after.get(table, {}).get(key, [])}  # rows hold lists (genres)
            lost += sum(1 for row in weeks.get(key, []) if repr(row) not in kept)
    return lost


def test_a_run_killed_mid_write_loses_nothing_and_the_next_run_completes_it(tmp_path):
    home = tmp_path / "rec_home"
    uninterrupted_seconds = {}
    for week in (EARLIER, WEEK):  # uninterrupted: what every recovered run of WEEK must equal
        done = run_week(home, week)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        uninterrupted_seconds[week] = done.seconds
    reference_tables, reference_artifacts = table_rows(home), artifact_hashes(home, WEEK)
    earlier_tables, earlier_artifacts = reference_tables, artifact_hashes(home, EARLIER)
    report = []
    for fault, point in FAULTS:
        before_tables, before_artifacts = table_rows(home), artifact_hashes(home, WEEK)
        killed = run_week(home, WEEK, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (fault, (killed.stdout + killed.stderr)[-3000:])
        after_tables = table_rows(home)
        # The earlier week and every snapshot table are untouched.
        assert week_state(after_tables, EARLIER) == week_state(earlier_tables, EARLIER), fault
        assert artifact_hashes(home, EARLIER) == earlier_artifacts, fault
        assert {t: w for t, w in after_tables.items() if "all" in w} == \
            {t: w for t, w in before_tables.items() if "all" in w}, fault
        # The killed week holds, table by table and artifact by artifact, its previous version or nothing.
        for table, rows in week_state(after_tables, WEEK).items():
            assert rows in (week_state(before_tables, WEEK).get(table, []), []), (fault, table)
        for name, content in artifact_hashes(home, WEEK).items():
            assert content in (before_artifacts.get(name), None), (fault, name)
        lost = rows_lost(before_tables, after_tables, ["all", EARLIER])
        # The next run of the week completes, and equals the uninterrupted one.
        recovered = run_week(home, WEEK)
        assert recovered.returncode == 0, (fault, (recovered.stdout + recovered.stderr)[-3000:])
        recovered_tables = table_rows(home)
        assert week_state(recovered_tables, WEEK) == week_state(reference_tables, WEEK), fault
        assert artifact_hashes(home, WEEK) == reference_artifacts, fault
        assert lost == 0
        report.append({"fault": fault, "crash_point": point, "killed_with": "SIGKILL",
                       "killed_run_seconds": killed.seconds, "recovery_run_seconds": recovered.seconds,
                       "recovery_run_failed": recovered.returncode != 0, "rows_lost": lost,
                       "recovered_equal_to_uninterrupted": True})  # asserted above
    if os.environ.get("REC_FAULTS_REPORT"):
        summary = {"preset": "tiny", "weeks": {"earlier": EARLIER, "killed": WEEK},
                   "uninterrupted_run_seconds": uninterrupted_seconds,
                   "faults_injected_per_class": dict(Counter(entry["fault"] for entry in report)),
                   "runs_failed": sum(entry["recovery_run_failed"] for entry in report),
                   "rows_lost": sum(entry["rows_lost"] for entry in report), "faults": report}
        Path(os.environ["REC_FAULTS_REPORT"]).write_text(json.dumps(summary, indent=1) + "\n")
