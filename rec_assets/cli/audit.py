"""The audit path: from a recommendation row back to the checkpoint, run, features and event windows.

``python -m rec_assets.cli audit --week W --user U`` prints it; the same steps work in the UI (README).
"""

from dataclasses import dataclass, field

from dagster import AssetKey, DagsterInstance

from rec_assets.asset_io import FEATURE_ASSETS, tower_asset_name
from rec_assets.defs.resources import WarehouseResource


@dataclass
class AuditTrail:
    week: str
    user_id: int
    recommendations: list[dict]
    checkpoints: dict[str, dict] = field(default_factory=dict)
    features: dict[str, dict] = field(default_factory=dict)
    windows: list[dict] = field(default_factory=list)
    history_events: int = 0

    def lines(self) -> list[str]:
        out = [f"Recommendations of user {self.user_id} in scoring week {self.week}:"]
        out += [f"  {r['list']:>13} {r['category']:>5} #{r['rank']} title {r['title_id']} score {r['score']:.3f} "
                f"({r['variant']}, checkpoint {r['checkpoint_sha256'][:12]}, run {r['checkpoint_run_id'][:8]})"
                for r in self.recommendations]
        for variant, info in self.checkpoints.items():
            out.append(f"Checkpoint {variant}: asset {info['asset']} partition {self.week}, run {info['run_id']}, "
                       f"file {info['path']} (sha256 {info['sha256'][:16]}, matches row: {info['matches']})")
        for kind, info in self.features.items():
            out.append(f"Feature {kind}: asset {info['asset']} content {info['content_hash'][:16]} at {info['path']}, "
                       f"run {info['run_id']}")
        out.append("Event windows of the week (events, users, titles):")
        out += [f"  {w['window_name']:>8} [{w['window_start']}, {w['window_end']}): {w['events']} events, "
                f"{w['users']} users, {w['titles']} titles" for w in self.windows]
        out.append(f"User {self.user_id} had {self.history_events} watch events in X' (the scoring history).")
        return out


def _materialization(instance: DagsterInstance, asset: str, week: str, run_id: str | None = None,
                     content_hash: str | None = None):
    """The materialisation of ``asset`` for ``week`` made by ``run_id`` or holding ``content_hash``."""
    records = instance.fetch_materializations(AssetKey(asset), limit=1000).records
    for record in records:
        metadata = record.asset_materialization.metadata
        if record.partition_key != week or (run_id is not None and record.run_id != run_id):
            continue
        if content_hash is not None and ("content_hash" not in metadata or metadata["content_hash"].value != content_hash):
            continue
        return record
    return None


def audit_recommendation(instance: DagsterInstance, warehouse_db: WarehouseResource, week: str,
                         user_id: int) -> AuditTrail:
    with warehouse_db.connect(read_only=True) as conn:
        recs = conn.execute(
            "SELECT list, category, rank, title_id, score, variant, checkpoint_sha256, checkpoint_run_id"
            " FROM weekly_recommendations WHERE scoring_week = $week AND user_id = $user ORDER BY list, category, rank",
            {"week": week, "user": user_id},
        ).df().to_dict("records")
        windows = conn.execute(
            "SELECT window_name, window_start, window_end, events, users, titles FROM split_windows"
            " WHERE scoring_week = $week ORDER BY window_start, window_name", {"week": week},
        ).df().to_dict("records")
        xp = next((w for w in windows if w["window_name"] == "X_prime"), None)
        history = conn.execute(
            "SELECT count(*) FROM raw_watch_events WHERE user_id = $user AND ts >= $start AND ts < $end",
            {"user": user_id, "start": xp["window_start"], "end": xp["window_end"]},
        ).fetchone()[0] if xp else 0
    if not recs:
        raise ValueError(f"user {user_id} has no recommendation in scoring week {week}")
    trail = AuditTrail(week, user_id, recs, windows=windows, history_events=int(history))
    for variant, sha256, run_id in {(r["variant"], r["checkpoint_sha256"], r["checkpoint_run_id"]) for r in recs}:
        record = _materialization(instance, tower_asset_name(variant), week, run_id)
        if record is None:
            raise ValueError(f"no materialisation of {tower_asset_name(variant)} for {week} in run {run_id}")
        metadata = record.asset_materialization.metadata
        trail.checkpoints[variant] = {
            "asset": tower_asset_name(variant), "run_id": record.run_id, "path": metadata["artifact_path"].value,
            "sha256": metadata["sha256"].value, "matches": metadata["sha256"].value == sha256,
            "inputs": metadata["input_data_versions"].value,
        }
        for kind, content_hash in metadata["input_data_versions"].value.items():
            feature = _materialization(instance, FEATURE_ASSETS[kind], week, content_hash=content_hash)
            if feature is None:
                raise ValueError(f"no materialisation of {FEATURE_ASSETS[kind]} for {week} holds {content_hash}")
            trail.features[kind] = {
                "asset": FEATURE_ASSETS[kind],
                "content_hash": content_hash,
                "path": feature.asset_materialization.metadata["artifact_path"].value,
                "run_id": feature.run_id,
            }
    return trail
