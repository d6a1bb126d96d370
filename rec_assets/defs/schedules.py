"""The weekly schedule: materialise the latest scoring week once its Y' week is complete.

A scoring week W (keyed by its Monday) scores X' -> Y', and Y' is W itself, so W can run from the
Monday after it. The schedule is built from the partitioned job (``build_schedule_from_partitioned_job``):
its cadence follows the weekly partitions and each tick requests the last *complete* week, with the week
as the run key, so a tick never runs a week twice. Its job refreshes the catalogue snapshots, ingests
the week's events and materialises every scoring-week asset and the summary across weeks, in one run.

It starts stopped: turn it on in the UI (Automation) and the daemon that ``make ui`` starts runs it.
Weeks it missed, and history, are backfills.
"""

from dagster import AssetSelection, DefaultScheduleStatus, build_schedule_from_partitioned_job, define_asset_job

from rec_assets.defs.jobs import OPT_IN_ASSETS

WEEKLY_JOB = "weekly_refresh"
WEEKLY_SCHEDULE = "weekly_refresh_schedule"
# Ticks on Monday at 02:00 UTC: two hours' grace for events of Sunday evening that arrive late.
SCHEDULE_HOUR_UTC = 2

weekly_refresh_job = define_asset_job(
    WEEKLY_JOB,
    selection=AssetSelection.all() - OPT_IN_ASSETS,
    description="Catalogue snapshots, the week's events, every scoring-week asset of that week and the summary.",
)

weekly_refresh_schedule = build_schedule_from_partitioned_job(
    weekly_refresh_job,
    name=WEEKLY_SCHEDULE,
    hour_of_day=SCHEDULE_HOUR_UTC,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every Monday: the scoring week that ended on Sunday (its Y' is complete), with its events.",
)
