"""Evaluation of every variant of a scoring week, the weekly recommendations, and the summary across weeks.

The evaluation takes each variant's checkpoint of its own week as an input (a ``CheckpointRef`` loaded
through the graph), scores X' -> Y' on warm and cold-start candidates, movies and TV apart, and stores
the metrics in the ``evaluation_metrics`` table, with the paper's Table 1, Table 2 and Figure 4 as
metadata; on the simulator also the oracle rows of the cold-start titles (``oracle_metadata``,
``oracle_all``, ``oracle_linear_read``). The recommendations are the table the service reads.
"""

import time

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    ConfigurableResource,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from rec_assets.asset_io import DUCKDB_POOL, CheckpointRef, tower_asset_name, verified_checkpoint
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.resources import (
    ArtifactsResource,
    SourceResource,
    TrainingResource,
    WarehouseResource,
    WindowsResource,
    setting,
)
from rec_assets.defs.week_inputs import FEATURE_INPUTS, load_feature_week
from rec_assets.evaluation.metrics import DEFAULT_TOP_K
from rec_assets.evaluation.oracle import OracleFactors, evaluate_oracles, load_oracle_factors
from rec_assets.evaluation.report import (
    attention_figure,
    png_markdown,
    summary_across_weeks,
    summary_markdown,
    table1_markdown,
    table2_markdown,
)
from rec_assets.evaluation.week import evaluate_week, recommend
from rec_assets.model.variants import VARIANTS
from rec_assets.storage import tables
from rec_assets.storage.artifacts import ArtifactRef

EVALUATION_GROUP = "evaluation"
FIGURE_VARIANT = "attention_id"


class EvaluationResource(ConfigurableResource):
    """How weeks are scored, and which variants write the service's lists (read when the asset runs)."""

    top_k: int = setting("REC_TOP_K", DEFAULT_TOP_K, "list length K (the paper: 6).")
    chunk_users: int = Field(default=4096, description="Users scored per matrix product (bounds memory).")
    seed: int = Field(default=0, description="Seed of the random baseline.")
    # The paper finds the ID embedding helps warm titles and hurts cold ones: hence two variants.
    production_variant: str = setting("REC_PRODUCTION_VARIANT", "attention_id",
                                      "the variant whose lists the service shows.")
    new_titles_variant: str = setting("REC_NEW_TITLES_VARIANT", "attention_no_id",
                                      "the variant of the 'new this week' lists (cold-start titles).")

    def list_variants(self) -> dict[str, str]:
        """List name -> the variant that writes it; a name that is no variant is refused."""
        chosen = {"all": self.production_variant, "new_this_week": self.new_titles_variant}
        for setting_name, variant in zip(("REC_PRODUCTION_VARIANT", "REC_NEW_TITLES_VARIANT"), chosen.values()):
            if variant not in VARIANTS:
                raise ValueError(f"{setting_name}={variant!r} is not a variant: one of {', '.join(VARIANTS)}")
        return chosen


def oracle_factors_for(source: SourceResource) -> OracleFactors | None:
    """The simulator's hidden factors, for the oracle rows only (never a model's input); None for other sources."""
    return load_oracle_factors(source.open().data_dir) if source.kind == "simulator" else None


CHECKPOINT_INPUTS = {f"checkpoint_{v}": AssetIn(tower_asset_name(v)) for v in VARIANTS}
# Both assets score the week's X' with every variant's checkpoint of the same week.
SCORES_A_WEEK = dict(group_name=EVALUATION_GROUP, kinds={"pytorch", "duckdb"}, pool=DUCKDB_POOL,
                     partitions_def=SCORING_WEEKS, ins={**FEATURE_INPUTS, **CHECKPOINT_INPUTS},
                     deps=["week_titles", "raw_users"])


@asset(
    **SCORES_A_WEEK,
    code_version="evaluation-v2",
    description="Precision, Recall, Coverage and Converted Coverage @K of every variant and baseline, warm and "
                "cold-start titles, movies and TV apart (on the simulator also the oracle ceilings of the cold-start "
                "titles); Table 1, Table 2 and the attention figure.",
)
def evaluation_metrics(
    context: AssetExecutionContext,
    source: SourceResource,
    warehouse_db: WarehouseResource,
    windows: WindowsResource,
    artifacts: ArtifactsResource,
    training: TrainingResource,
    evaluation: EvaluationResource,
    categorical: ArtifactRef,
    synopsis: ArtifactRef,
    cover_art: ArtifactRef,
    **checkpoints: CheckpointRef,
):
    week = context.partition_key
    data = load_feature_week(context, warehouse_db, windows, categorical, synopsis, cover_art, "score",
                             threads=training.threads)
    refs = {ref.variant: ref for ref in checkpoints.values()}
    started = time.perf_counter()
    result = evaluate_week(data, {v: verified_checkpoint(r) for v, r in refs.items()}, k=evaluation.top_k,
                           seed=evaluation.seed, chunk_users=evaluation.chunk_users)
    seconds = time.perf_counter() - started
    metrics = result.metrics
    oracle = oracle_factors_for(source)
    if oracle is not None:
        oracle_rows = evaluate_oracles(data, oracle, evaluation.top_k, pd.Timestamp(week).date(),
                                       evaluation.chunk_users)
        metrics = pd.concat([metrics, oracle_rows], ignore_index=True)
    metrics = metrics.assign(scoring_week=pd.Timestamp(week).date(), k=evaluation.top_k)
    metrics["checkpoint_sha256"] = metrics["variant"].map({v: r.sha256 for v, r in refs.items()})
    with warehouse_db.connect() as conn:
        tables.replace_week_rows(conn, "evaluation_metrics", week, metrics)

    table1 = table1_markdown(metrics, k=evaluation.top_k)
    table2 = table2_markdown(metrics, k=evaluation.top_k)
    figure_md = "attention figure: no attention variant evaluated"
    figures_dir = artifacts.path("figures", week)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for variant, (weights, names) in result.attention.items():
        png = attention_figure(weights, names, data.items.is_tv, title=f"Attention weights ({variant}), week {week}")
        (figures_dir / f"attention_{variant}.png").write_bytes(png)
        if variant == FIGURE_VARIANT or figure_md.startswith("attention figure"):
            figure_md = png_markdown(png, f"attention weights {variant}")
    evaluated = metrics[metrics.metric == "precision"].pivot_table(
        index=["candidate_set", "category"], columns="variant", values="evaluated_users", aggfunc="first"
    ).iloc[:, :1].rename(columns=lambda _: "evaluated_users")
    context.log.info(f"evaluated {len(refs)} variants and 2 baselines in {seconds:.1f} s")
    return MaterializeResult(
        metadata={
            "table_1_warm": MetadataValue.md(table1),
            "table_2_cold_start": MetadataValue.md(table2),
            "figure_4_attention": MetadataValue.md(figure_md),
            "evaluated_users": MetadataValue.md(evaluated.reset_index().to_markdown(index=False)),
            "rows": len(metrics),
            "oracle_rows": oracle is not None,
            "seconds": round(seconds, 2),
            "seconds_per_variant": MetadataValue.json({k: round(v, 2) for k, v in result.seconds.items()}),
            "checkpoints": MetadataValue.json({v: {"sha256": r.sha256, "run_id": r.run_id} for v, r in refs.items()}),
            "figures_dir": str(figures_dir),
        },
    )


@asset(
    **SCORES_A_WEEK,
    code_version="recommendations-v2",
    description="Top-K titles per user and category for the week from the production variant (the evaluation "
                "resource's, default attention_id), and a 'new this week' top-K over the cold-start titles from the "
                "new-titles variant (default attention_no_id); each row names its checkpoint.",
)
def weekly_recommendations(
    context: AssetExecutionContext,
    warehouse_db: WarehouseResource,
    windows: WindowsResource,
    training: TrainingResource,
    evaluation: EvaluationResource,
    categorical: ArtifactRef,
    synopsis: ArtifactRef,
    cover_art: ArtifactRef,
    **checkpoints: CheckpointRef,
):
    week = context.partition_key
    lists = evaluation.list_variants()
    refs = {ref.variant: ref for ref in checkpoints.values()}
    production, new_titles = refs[lists["all"]], refs[lists["new_this_week"]]
    data = load_feature_week(context, warehouse_db, windows, categorical, synopsis, cover_art, "score",
                             threads=training.threads)
    catalogue = data.catalogue
    all_titles = catalogue["title_id"].notna().to_numpy()
    cold = catalogue["is_cold_start"].to_numpy(bool)
    frames = []
    for list_name, ref, candidates in (("all", production, all_titles), ("new_this_week", new_titles, cold)):
        path = verified_checkpoint(ref)
        for frame in recommend(data, path, evaluation.top_k, list_name, candidates, evaluation.chunk_users):
            frames.append(frame.assign(variant=ref.variant, checkpoint_sha256=ref.sha256, checkpoint_run_id=ref.run_id))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    rows.insert(0, "scoring_week", pd.Timestamp(week).date())
    rows["recommendation_run_id"] = context.run.run_id
    with warehouse_db.connect() as conn:
        tables.replace_week_rows(conn, "weekly_recommendations", week, rows)
    counts = rows.groupby(["list", "category"]).size().rename("rows").reset_index()
    return MaterializeResult(
        metadata={
            "rows": len(rows),
            "users": int(rows["user_id"].nunique()) if len(rows) else 0,
            "rows_per_list": MetadataValue.md(counts.to_markdown(index=False)),
            "production_variant": production.variant,
            "production_checkpoint_sha256": production.sha256,
            "new_titles_variant": new_titles.variant,
            "new_titles_checkpoint_sha256": new_titles.sha256,
        },
        data_version=DataVersion(f"{production.sha256[:12]}-{new_titles.sha256[:12]}-{len(rows)}"),
    )


@asset(
    group_name=EVALUATION_GROUP,
    kinds={"duckdb"},
    deps=["evaluation_metrics"],
    code_version="summary-v1",
    description="Each metric's mean, spread, min and max across every evaluated week, so that small weekly "
                "samples can still be judged.",
)
def evaluation_summary(warehouse_db: WarehouseResource):
    with warehouse_db.connect(read_only=True) as conn:
        metrics = conn.execute("SELECT * EXCLUDE (scoring_week), scoring_week::VARCHAR AS scoring_week"
                               " FROM evaluation_metrics ORDER BY ALL").df()
    summary = summary_across_weeks(metrics)
    weeks = sorted(metrics["scoring_week"].astype(str).unique())
    return MaterializeResult(
        metadata={
            "weeks": len(weeks),
            "first_week": weeks[0] if weeks else "",
            "last_week": weeks[-1] if weeks else "",
            "table_1_warm_mean_over_weeks": MetadataValue.md(table1_markdown(metrics)),
            "table_2_cold_start_mean_over_weeks": MetadataValue.md(table2_markdown(metrics)),
            "summary": MetadataValue.md(summary_markdown(summary)),
        }
    )


evaluation_assets = [evaluation_metrics, weekly_recommendations, evaluation_summary]
