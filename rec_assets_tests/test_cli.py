"""`make run` and `make backfill` on MovieLens directories as users bring them: the command (in its own process,
as `make run` starts it) completes with every good row stored and every bad one quarantined with its reason, or
stops with a one-line message naming the file, line and reason; weeks too sparse to evaluate are refused or skipped
with their counts and the setting to change."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from rec_assets_tests.sources import movielens_layouts as layouts

pytestmark = pytest.mark.skipif(not layouts.SHARED.is_dir(), reason="MovieLens 100K is not at ../shared/data")
PROJECT = Path(__file__).resolve().parents[1]
LAST_WEEK = "1998-04-13"


def run_cli(data_dir: Path, home: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REC_", "DAGSTER_"))}
    env.update(REC_DATA_SOURCE="movielens", REC_DATA_DIR=str(data_dir), REC_HOME=str(home), REC_EPOCHS="1",
               **settings)
    return subprocess.run([sys.executable, "-m", "rec_assets.cli", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=900)


def stored(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def without_posters(directory: Path) -> Path:
    """Cover art is the slow stage and not what these tests are about."""
    (directory / "posters").unlink(missing_ok=True)
    return directory


def test_make_run_without_a_users_file_completes_with_a_history_only_user_tower(tmp_path):
    directory, expected = layouts.without_users_file(tmp_path / "ml")
    result = run_cli(without_posters(directory), tmp_path / "home", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("100000 source rows read = 99151 stored (0 replaced) + 0 quarantined + 0 cascaded from rejected titles"
            " + 849 held back (849 after the last complete week (1998-04-20 .. 1998-04-22))") in result.stdout
    assert f"Scoring week {LAST_WEEK}" in result.stdout and "Weekly recommendations written:" in result.stdout
    before_results = result.stdout[:result.stdout.index(f"Scoring week {LAST_WEEK}")]
    assert len(before_results.splitlines()) <= 60, before_results  # one line per step, not the event stream
    log = Path(re.search(r"Engine event log: (\S+)", result.stdout)[1])
    assert "STEP_SUCCESS" in log.read_text() and "DEBUG" not in result.stdout + result.stderr
    home = tmp_path / "home"
    assert stored(home, "SELECT count(*) FROM raw_watch_events") == [(expected.stored_by_full_ingest,)]
    assert stored(home, "SELECT count(*) FROM raw_users") == [(0,)]
    (users,) = stored(home, f"SELECT count(DISTINCT user_id) FROM weekly_recommendations"
                            f" WHERE scoring_week = '{LAST_WEEK}'")[0]
    assert users > 100  # every user with a history gets lists, with no users file at all


def test_make_run_stops_on_a_bad_timestamp_in_fail_mode_with_one_line_naming_file_line_and_reason(tmp_path):
    directory, _ = layouts.bad_timestamps(tmp_path / "ml")
    result = run_cli(directory, tmp_path / "home", "run", REC_BAD_ROWS="fail")
    assert result.returncode == 1
    failure = [line.strip() for line in result.stderr.splitlines() if line.startswith("    raw_watch_events:")]
    assert len(failure) == 1
    assert re.fullmatch(r"raw_watch_events: (\w+\.)*IngestionError: ratings\.csv line 100002: timestamp "
                        r"1969-12-31T23:59:55\+00:00 is before the earliest plausible time 1990-01-01 "
                        r"\(REC_EARLIEST_EVENT\)", failure[0]), failure[0]
    assert "Traceback" not in result.stdout


def test_a_week_too_sparse_to_evaluate_is_refused_and_a_backfill_skips_it_with_the_reason(tmp_path):
    directory, expected = layouts.sparse_last_weeks(tmp_path / "ml")
    home = tmp_path / "home"
    refused = run_cli(directory, home, "run", "--week", LAST_WEEK)
    assert refused.returncode == 1
    assert (f"refused: scoring week {LAST_WEEK} cannot be trained and evaluated: 3 users have a label in Y "
            f"[1998-03-30, 1998-04-13) and ") in refused.stderr
    assert "at least 20 are needed in each (REC_MIN_LABELLED_USERS)" in refused.stderr
    assert stored(home, "SELECT count(*) FROM raw_watch_events") == [(expected.stored_by_full_ingest,)]
    assert stored(home, "SELECT count(*) FROM split_windows")[0][0] == 0 if _has_table(home, "split_windows") else True

    skipped = run_cli(directory, home, "backfill", "--first", "1998-04-06", "--last", LAST_WEEK)
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert skipped.stdout.count("==> skipped: scoring week") == 2
    assert "==> materialise scoring week" not in skipped.stdout


def _has_table(home: Path, table: str) -> bool:
    return bool(stored(home, f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'")[0][0])


def test_a_missing_data_directory_ends_in_one_line_saying_what_to_set_and_the_traceback_only_with_debug(tmp_path):
    result = run_cli(tmp_path / "nowhere", tmp_path / "home", "run")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and "Warning" not in line
             and not line.startswith("  ")]
    assert lines[0] == (f"error: source 'movielens': data directory {tmp_path / 'nowhere'} does not exist (set "
                        f"REC_DATA_DIR to the folder holding the source's files; README, 'Data sources', lists them)")
    assert "Traceback" not in result.stderr
    debug = run_cli(tmp_path / "nowhere", tmp_path / "home", "--debug", "run")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
