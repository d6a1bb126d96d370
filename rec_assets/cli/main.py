"""`make run` and `make ui`: materialise the graph for the latest scoring week, or start the UI.

``run`` works in stages, each a Dagster run recorded in the instance under ``$DAGSTER_HOME`` (so the
UI shows them afterwards): ingest every event week in one run, then every scoring-week asset of the
latest week, then the unpartitioned summaries; it prints what it is doing and how long each stage took.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def prepare_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``$REC_HOME/dagster_home``) holding the project's dagster.yaml."""
    from rec_assets.defs.resources import rec_home

    home = Path(os.environ.get("DAGSTER_HOME") or rec_home() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def configured_warehouse():
    """The warehouse resource with its EnvVar settings (REC_DUCKDB, REC_TABLE_STORE) read now: outside a run
    Dagster does not resolve them."""
    from rec_assets.definitions import build_definitions
    from rec_assets.defs.resources import resolved

    return resolved(build_definitions().resources["warehouse_db"])


def _stage(title: str):
    print(f"==> {title}", flush=True)
    return time.monotonic()


def run(args: argparse.Namespace) -> int:
    return execute_stages(week=args.week)


def backfill(args: argparse.Namespace) -> int:
    """Every scoring week from ``--first`` to ``--last`` (default: all the source supports), one run per week,
    oldest first, in this process: the same runs a UI backfill launches, without needing the daemon. Weeks without
    enough labelled users are skipped with the reason."""
    prepare_dagster_home()
    from rec_assets.cli.stages import backfill_weeks

    weeks = backfill_weeks(args.first, args.last)
    print(f"backfilling {len(weeks)} scoring weeks: {weeks[0]} .. {weeks[-1]}", flush=True)
    return execute_stages(weeks=weeks)


def week_evaluator():
    """week key -> its WeekEvaluability, from the events stored in the warehouse (REC_MIN_LABELLED_USERS)."""
    from datetime import datetime, timedelta, timezone

    from rec_assets.definitions import build_definitions
    from rec_assets.defs.resources import resolved
    from rec_assets.model.inputs import week_evaluability
    from rec_assets.split.windows import WindowLengths, week_windows

    settings = resolved(build_definitions().resources["windows"])
    lengths = WindowLengths(settings.history_days, settings.label_days, settings.recent_popularity_days)
    warehouse = configured_warehouse()

    def evaluate(week: str):
        start = datetime.fromisoformat(week).replace(tzinfo=timezone.utc)
        with warehouse.connect(read_only=True) as conn:
            return week_evaluability(conn, week_windows(start, start + timedelta(days=7), lengths),
                                     settings.min_labelled_users)

    return evaluate


def execute_stages(week: str | None = None, weeks: list[str] | None = None) -> int:
    """Ingest; then the scoring weeks: ``weeks`` (a backfill: those without enough labelled users skipped), or
    ``week`` (refused when it has too few), or by default the latest week the stored events can evaluate; then the
    summaries. Every stage is a Dagster run recorded in the instance."""
    prepare_dagster_home()
    from dagster import DagsterInstance

    from rec_assets.cli.stages import (
        backfill_weeks,
        ingest_stage,
        latest_evaluable,
        release_dead_runs,
        scoring_week_stage,
        summaries_stage,
    )
    from rec_assets.definitions import build_definitions

    defs = build_definitions()
    instance = DagsterInstance.get()
    for run_id in release_dead_runs(instance):
        print(f"==> run {run_id} was killed mid-way: marked failed, its pool slots released", flush=True)
    timings: list[tuple[str, float]] = []

    engine_log = engine_log_path()

    def execute(stage) -> bool:
        started = _stage(stage.title)
        result = stage.execute(instance)
        elapsed = time.monotonic() - started
        timings.append((stage.title, elapsed))
        for step, seconds, ok, summary in append_engine_log(instance, result.run_id, engine_log):
            print(f"    {seconds:7.1f} s  {step}{'' if ok else '  FAILED'}", flush=True)
            if summary:
                print(f"              {summary}", flush=True)
        print(f"    {'ok' if result.success else 'FAILED'} in {elapsed:.1f} s (run {result.run_id})", flush=True)
        if not result.success:
            print_failure(result)
            print(f"    engine log: {engine_log}", file=sys.stderr)
        return result.success

    if week is not None:
        backfill_weeks(week, week)  # refuses a week outside the span before anything runs
    if not execute(ingest_stage(defs)):
        return 1
    evaluate = week_evaluator()
    if weeks is None:
        chosen = evaluate(week) if week else latest_evaluable(evaluate, backfill_weeks())
        if not chosen.ok:
            print(f"refused: {chosen.describe()}", file=sys.stderr)
            if not week:
                print("    no scoring week of the span has enough labelled users", file=sys.stderr)
            return 1
        if not week:
            print(f"    latest evaluable week: {chosen.describe()}", flush=True)
        weeks = [chosen.week]
    else:
        evaluabilities = [evaluate(w) for w in weeks]
        for skipped in (e for e in evaluabilities if not e.ok):
            print(f"==> skipped: {skipped.describe()}", flush=True)
        weeks = [e.week for e in evaluabilities if e.ok]
    for scoring_week in weeks:
        if not execute(scoring_week_stage(defs, scoring_week)):
            return 1
    if weeks and not execute(summaries_stage(defs)):  # nothing to summarise when every week was skipped
        return 1
    if len(weeks) > 1:
        print_backfill_report(weeks)
    elif weeks:
        print_week_report(weeks[0])
    print("\nStage timings:")
    for title, seconds in timings:
        print(f"  {seconds:8.1f} s  {title}")
    print(f"  {sum(s for _, s in timings):8.1f} s  total")
    print(f"Engine event log: {engine_log}")
    return 0


def engine_log_path() -> Path:
    """A new file under ``$REC_HOME/logs`` for this command's Dagster event stream."""
    from rec_assets.defs.resources import rec_home

    logs = rec_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def append_engine_log(instance, run_id: str, path: Path) -> list[tuple[str, float, bool, str]]:
    """Append the run's whole event log to ``path``; return each step with its duration, outcome and the
    ``row_accounting_summary`` line its materialisation carries, if any (the ingestion's)."""
    from dagster import DagsterEventType

    started: dict[str, float] = {}
    summaries: dict[str, str] = {}
    steps = []
    with path.open("a") as log:
        for entry in instance.all_logs(run_id):
            stamp = time.strftime("%H:%M:%S", time.localtime(entry.timestamp))
            level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else entry.level
            event = entry.dagster_event
            what = f"{event.event_type_value} {event.message or ''}" if event is not None else entry.user_message
            log.write(f"{stamp} {run_id[:8]} {level:<7} {entry.step_key or '-'}: {what.strip()}\n")
            if event is None or entry.step_key is None:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                summary = event.event_specific_data.materialization.metadata.get("row_accounting_summary")
                if summary is not None:
                    summaries[entry.step_key] = str(summary.value)
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                ok = event.event_type == DagsterEventType.STEP_SUCCESS
                seconds = entry.timestamp - started.get(entry.step_key, entry.timestamp)
                steps.append((entry.step_key, seconds, ok, summaries.get(entry.step_key, "")))
    return steps


def print_week_report(week: str) -> None:
    """What the week's tables hold, read back from the warehouse."""
    warehouse = configured_warehouse()
    with warehouse.connect(read_only=True) as conn:
        print(f"\nScoring week {week}")
        windows = conn.execute(
            "SELECT window_name, window_start, window_end, events, users, titles FROM split_windows"
            " WHERE scoring_week = $week ORDER BY window_start, window_name",
            {"week": week},
        ).df()
        print(windows.to_string(index=False))
        cold = conn.execute(
            "SELECT category, count(*) AS cold_start_titles, sum(label_watches) AS label_watches"
            " FROM cold_start_titles WHERE scoring_week = $week GROUP BY category ORDER BY category",
            {"week": week},
        ).df()
        print("\nCold-start titles of the week:")
        print(cold.to_string(index=False) if not cold.empty else "  none")
        tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'evaluation_metrics'").fetchone()[0]
        if tables:
            from rec_assets.evaluation.report import table1_markdown, table2_markdown

            metrics = conn.execute("SELECT * EXCLUDE (scoring_week), scoring_week::VARCHAR AS scoring_week"
                                   " FROM evaluation_metrics WHERE scoring_week = $week", {"week": week}).df()
            print("\n" + table1_markdown(metrics))
            print("\n" + table2_markdown(metrics))
            evaluated = metrics[(metrics.metric == "precision") & (metrics.variant == "random")]
            print("\nEvaluated users (a new watch in Y' of the candidate set and category):")
            print(evaluated[["candidate_set", "category", "evaluated_users"]].to_string(index=False))
            recs = conn.execute(
                "SELECT list, category, count(DISTINCT user_id) AS users, count(*) AS rows, any_value(variant) AS variant"
                " FROM weekly_recommendations WHERE scoring_week = $week GROUP BY ALL ORDER BY ALL", {"week": week}
            ).df()
            print("\nWeekly recommendations written:")
            print(recs.to_string(index=False))
        rejected = conn.execute("SELECT kind, reason, count(*) AS n FROM rejected_rows GROUP BY ALL ORDER BY ALL").df()
        print("\nRejected source rows:", "none" if rejected.empty else "")
        if not rejected.empty:
            print(rejected.to_string(index=False))


def print_backfill_report(weeks: list[str]) -> None:
    """Tables 1 and 2 as means over ``weeks``, each variant's precision and recall as mean ± std across them,
    and per week the cold-start titles and evaluated users: what the weeks' ``evaluation_metrics`` rows hold."""
    from rec_assets.evaluation.report import (
        spread_markdown,
        table1_markdown,
        table2_markdown,
    )

    with configured_warehouse().connect(read_only=True) as conn:
        metrics = conn.execute(
            "SELECT * EXCLUDE (scoring_week), scoring_week::VARCHAR AS scoring_week FROM evaluation_metrics"
            " WHERE scoring_week BETWEEN $first AND $last ORDER BY ALL",
            {"first": weeks[0], "last": weeks[-1]},
        ).df()
        cold = conn.execute(
            "SELECT scoring_week::VARCHAR AS scoring_week, count(*) AS cold_start_titles FROM cold_start_titles"
            " WHERE scoring_week BETWEEN $first AND $last GROUP BY ALL",
            {"first": weeks[0], "last": weeks[-1]},
        ).df()
    if metrics.empty:
        print(f"\nNo evaluation_metrics rows for {weeks[0]} .. {weeks[-1]}")
        return
    evaluated = metrics[(metrics.metric == "precision") & (metrics.variant == "random")].pivot_table(
        index="scoring_week", columns=["candidate_set", "category"], values="evaluated_users", aggfunc="max")
    evaluated.columns = [f"evaluated users {c} {cat}" for c, cat in evaluated.columns]
    per_week = cold.set_index("scoring_week").join(evaluated, how="outer").fillna(0).astype("int64")
    present = sorted(metrics["scoring_week"].unique())
    print(f"\n{len(present)} evaluated weeks, {present[0]} .. {present[-1]}: means over the weeks")
    print("\n" + table1_markdown(metrics))
    print("\n" + table2_markdown(metrics))
    print("\nMean ± std across weeks (weeks with evaluated users only):")
    print(spread_markdown(metrics))
    print("\nPer week:")
    print(per_week.reset_index().to_string(index=False))


def report(args: argparse.Namespace) -> int:
    """Print what the warehouse holds for weeks already materialised (nothing runs)."""
    prepare_dagster_home()
    from rec_assets.cli.stages import backfill_weeks

    weeks = backfill_weeks(args.first, args.last)
    if len(weeks) == 1:
        print_week_report(weeks[0])
    else:
        print_backfill_report(weeks)
    return 0


def print_failure(result) -> None:
    """What failed, in a line each: a failed check's own description and counts, a failed step's own error (the
    innermost cause, e.g. ``IngestionError: ratings.csv line 57: ...``), never only a name or a traceback."""
    for line in failure_lines(result.all_events):
        print(f"    {line}", file=sys.stderr)


def failure_lines(events) -> list[str]:
    lines = []
    for event in events:
        data = event.event_specific_data
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not getattr(data, "passed", True):
            counts = ", ".join(f"{key} {value.value}" for key, value in (data.metadata or {}).items()
                               if isinstance(value.value, (int, float)))
            lines.append(f"{event.step_key or ''}: check {data.check_name} failed: {data.description}"
                         + (f" [{counts}]" if counts else ""))
        elif event.is_step_failure:
            error = getattr(data, "error", None)
            while error is not None and error.cause is not None:
                error = error.cause
            message = error.message.strip() if error is not None else event.message
            lines.append(f"{event.step_key or ''}: {message}")
    return lines


def ui(args: argparse.Namespace) -> int:
    """``dg dev`` from the project root (its ``[tool.dg]`` section names the code location): the webserver, the
    daemon (run queue, backfills, schedules) and a code server, on the instance of ``$DAGSTER_HOME``."""
    home = prepare_dagster_home()
    print(f"Dagster UI on http://{args.host}:{args.port} (instance {home}); Ctrl-C stops it.", flush=True)
    dg = Path(sys.executable).with_name("dg")
    os.chdir(PROJECT_ROOT)
    # dg compares the active virtual environment with the project's; this interpreter's is the project's.
    os.environ["VIRTUAL_ENV"] = sys.prefix
    os.execv(str(dg), [str(dg), "dev", "--host", args.host, "--port", str(args.port)])


def audit(args: argparse.Namespace) -> int:
    prepare_dagster_home()
    from dagster import DagsterInstance

    from rec_assets.cli.audit import audit_recommendation

    trail = audit_recommendation(DagsterInstance.get(), configured_warehouse(), args.week, args.user)
    print("\n".join(trail.lines()))
    return 0


def quiet_warnings() -> None:
    """Beta parameters the graph uses on purpose, and the schedule job's mixed backfill policies (it runs one
    week per tick), are not news to a person reading `make run`'s progress."""
    from dagster import BetaWarning

    warnings.simplefilter("ignore", BetaWarning)
    warnings.filterwarnings("ignore", message="Asset job weekly_refresh materializes assets with varying")


def main(argv: list[str] | None = None) -> int:
    quiet_warnings()
    parser = argparse.ArgumentParser(prog="rec_assets")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="materialise the whole graph for a scoring week")
    run_parser.add_argument("--week", default=None, help="scoring week (Monday, YYYY-MM-DD); default: the latest")
    run_parser.set_defaults(handler=run)
    backfill_parser = commands.add_parser("backfill", help="materialise every scoring week of a range, oldest first")
    backfill_parser.add_argument("--first", default=None, help="first scoring week (default: the source's first)")
    backfill_parser.add_argument("--last", default=None, help="last scoring week (default: the latest)")
    backfill_parser.set_defaults(handler=backfill)
    report_parser = commands.add_parser("report", help="print the results of weeks already materialised")
    report_parser.add_argument("--first", default=None, help="first scoring week (default: the source's first)")
    report_parser.add_argument("--last", default=None, help="last scoring week (default: the latest)")
    report_parser.set_defaults(handler=report)
    ui_parser = commands.add_parser("ui", help="start the Dagster UI with the daemon")
    ui_parser.add_argument("--host", default="127.0.0.1")
    ui_parser.add_argument("--port", type=int, default=3000)
    ui_parser.set_defaults(handler=ui)
    audit_parser = commands.add_parser("audit", help="trace a user's recommendations back to checkpoint, run and data")
    audit_parser.add_argument("--week", required=True, help="scoring week (Monday, YYYY-MM-DD)")
    audit_parser.add_argument("--user", required=True, type=int, help="user id")
    audit_parser.set_defaults(handler=audit)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failure")
    args = parser.parse_args(argv)
    if args.debug:
        return args.handler(args)
    try:
        return args.handler(args)
    except (ValueError, OSError) as error:
        # Bad settings and bad input (IngestionError, SqlModelError and configuration checks are ValueErrors;
        # a missing file or directory an OSError) end in one line a person can act on.
        print(f"error: {error}\n(rerun with `python -m rec_assets.cli --debug {args.command} ...` for the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
