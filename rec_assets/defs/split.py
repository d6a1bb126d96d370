"""The split: one Dagster asset per SQL model of ``dbt_like_sql/``, partitioned by scoring week.

Each asset renders its model, binds the partition's window bounds as parameters and replaces that
week's rows (delete, then insert) in one transaction. Dependencies come from the SQL (see the runner):
model-to-model edges map week to week; reads of ``raw_watch_events`` map a scoring week to every event
week its windows cover. Data tests in ``dbt_like_sql/tests/`` run as blocking checks of the model they
guard, and a GX suite checks the windows.
"""



from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from rec_assets.asset_io import DUCKDB_POOL, SQL_DIR, week_windows_for
from rec_assets.defs.partitions import EVENTS_OF_SCORING_WEEK, SCORING_WEEKS
from rec_assets.defs.resources import WarehouseResource, WindowsResource
from rec_assets.model.inputs import week_evaluability
from rec_assets.quality.expectations import run_suite, split_windows_expectations
from rec_assets.split.windows import WeekEvaluability
from rec_assets.sqlmodels.runner import (
    TESTS_DIR,
    SqlModel,
    discover_models,
    discover_queries,
    materialize_partition,
    query,
    topological_order,
    upstream_models,
)

SPLIT_GROUP = "split"
RAW_SOURCES = ("raw_watch_events", "raw_titles", "raw_users")

CHECK_SPLIT_WINDOWS_EXPECTATIONS = "split_windows_meet_expectations"
CHECK_SPLIT_WEEK_EVALUABLE = "split_week_has_enough_labelled_users"

MODELS = discover_models(SQL_DIR, sources=RAW_SOURCES)
DATA_TESTS = discover_queries(SQL_DIR, TESTS_DIR)
_ORDER = topological_order(MODELS)


def data_test_result(conn, test: SqlModel, values: dict) -> AssetCheckResult:
    """A data test passes when its query returns no row; a failure names the rule and how many rows."""
    failing = query(conn, test, values).df()
    preview = failing.head(10).to_markdown(index=False) if not failing.empty else ""
    return AssetCheckResult(
        check_name=test.name,
        passed=failing.empty,
        description=(test.description if failing.empty else f"{len(failing)} row(s) break: {test.description}"),
        metadata={"failing_rows": len(failing), "rendered_sql": MetadataValue.md(f"```sql\n{test.render()}\n```"),
                  **({"failing_preview": MetadataValue.md(preview)} if preview else {})},
    )


def windows_expectations_result(conn, week) -> AssetCheckResult:
    frame = conn.execute(
        "SELECT window_name, window_start, window_end, events FROM split_windows WHERE scoring_week = $week",
        {"week": week},
    ).df()
    outcome = run_suite("split_windows", frame, split_windows_expectations())
    return AssetCheckResult(
        check_name=CHECK_SPLIT_WINDOWS_EXPECTATIONS,
        passed=outcome.success,
        description=outcome.describe(),
        metadata={"windows": len(frame)},
    )


def evaluability_result(evaluability: WeekEvaluability) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=CHECK_SPLIT_WEEK_EVALUABLE,
        passed=evaluability.ok,
        description=evaluability.describe(),
        metadata={"label_users": evaluability.label_users, "scoring_users": evaluability.scoring_users,
                  "min_labelled_users": evaluability.minimum},
    )


def _tests_guarding(model: SqlModel) -> list[SqlModel]:
    """Data tests attach to the last model they read, so they run once that model is written."""
    guarded = []
    for test in DATA_TESTS.values():
        read_models = [name for name in test.tables_read if name in MODELS]
        if read_models and max(read_models, key=_ORDER.index) == model.name:
            guarded.append(test)
    return guarded


def _dependencies(model: SqlModel) -> list[AssetDep]:
    deps = [AssetDep(name) for name in upstream_models(model, MODELS)]
    if "raw_watch_events" in model.tables_read:
        deps.append(AssetDep("raw_watch_events", partition_mapping=EVENTS_OF_SCORING_WEEK))
    deps += [AssetDep(name) for name in ("raw_titles", "raw_users") if name in model.tables_read]
    return deps


def build_model_asset(model: SqlModel) -> AssetsDefinition:
    tests = _tests_guarding(model)
    check_specs = [
        AssetCheckSpec(test.name, asset=model.name, blocking=True, description=test.description) for test in tests
    ]
    if model.name == "split_windows":
        check_specs += [
            AssetCheckSpec(CHECK_SPLIT_WINDOWS_EXPECTATIONS, asset=model.name, blocking=True,
                           description="GX suite: four windows, each non-empty, each ending after it starts."),
            AssetCheckSpec(CHECK_SPLIT_WEEK_EVALUABLE, asset=model.name, blocking=True,
                           description="Enough users with a label in Y and in Y' to train and evaluate the week "
                                       "(REC_MIN_LABELLED_USERS); below it the week's towers are not trained."),
        ]

    @asset(
        name=model.name,
        group_name=SPLIT_GROUP,
        kinds={"duckdb", "sql"},
        pool=DUCKDB_POOL,
        partitions_def=SCORING_WEEKS,
        deps=_dependencies(model),
        code_version=model.code_version,
        description=model.description,
        check_specs=check_specs,
        metadata={"sql_file": str(model.path.relative_to(SQL_DIR.parent))},
    )
    def _model_asset(context: AssetExecutionContext, warehouse_db: WarehouseResource, windows: WindowsResource):
        week = week_windows_for(context.partition_time_window, windows)
        values = week.as_sql_parameters()
        with warehouse_db.connect() as conn:
            result = materialize_partition(conn, model, values)
            checks = [data_test_result(conn, test, values) for test in tests]
            if model.name == "split_windows":
                checks.append(windows_expectations_result(conn, values["scoring_week"]))
                checks.append(evaluability_result(week_evaluability(conn, week, windows.min_labelled_users)))
        if result.recreated_table:
            context.log.warning(f"{model.name}: columns changed, table rebuilt; other weeks need re-running")
        context.log.info(f"{model.name} {context.partition_key}: {result.rows_inserted} rows "
                         f"({result.rows_replaced} replaced)")
        return MaterializeResult(
            metadata={
                "rows": result.rows_inserted,
                "rows_replaced": result.rows_replaced,
                "windows": MetadataValue.md(
                    "\n".join(f"- {name}: [{s:%Y-%m-%d %H:%M}, {e:%Y-%m-%d %H:%M})" for name, (s, e) in week.named().items())
                ),
                "rendered_sql": MetadataValue.md(f"```sql\n{result.rendered_sql}\n```"),
                "parameters": MetadataValue.json({k: str(v) for k, v in result.parameters.items()}),
            },
            check_results=checks,
            data_version=DataVersion(result.content_hash),
        )

    return _model_asset


split_assets = [build_model_asset(MODELS[name]) for name in _ORDER]
