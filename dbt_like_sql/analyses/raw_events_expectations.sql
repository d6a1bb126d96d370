-- The event expectations of one ingestion range [range_start, range_end), evaluated in DuckDB: one row, the range's
-- event count and, per expectation, how many rows break it (rec_assets.quality.expectations.EVENT_EXPECTATIONS).
-- Same semantics as the GX suite (events_expectations): nulls are not counted by the between/in-set rules, the
-- bounds are inclusive ($earliest NULL: no lower bound), and every row of a repeated (user_id, title_id, ts) counts.
WITH events AS (
    SELECT user_id, title_id, ts
    FROM {{ ref('raw_watch_events') }}
    WHERE ts >= $range_start::TIMESTAMP AND ts < $range_end::TIMESTAMP
),
per_row AS (
    SELECT
        count(*) AS element_count,
        count(*) FILTER (WHERE user_id IS NULL) AS null_user_id,
        count(*) FILTER (WHERE title_id IS NULL) AS null_title_id,
        count(*) FILTER (WHERE ts IS NULL) AS null_ts,
        count(*) FILTER (
            WHERE ts > $latest::TIMESTAMP OR ($earliest::TIMESTAMP IS NOT NULL AND ts < $earliest::TIMESTAMP)
        ) AS ts_out_of_bounds
    FROM events
),
unknown_titles AS (
    SELECT count(*) AS unknown_title_id
    FROM events AS e
    ANTI JOIN {{ ref('raw_titles') }} AS t ON t.title_id = e.title_id
    WHERE e.title_id IS NOT NULL
),
repeated AS (
    SELECT coalesce(sum(n), 0)::BIGINT AS duplicate_rows
    FROM (
        SELECT count(*) AS n
        FROM events
        WHERE user_id IS NOT NULL OR title_id IS NOT NULL OR ts IS NOT NULL
        GROUP BY user_id, title_id, ts
        HAVING count(*) > 1
    )
)
SELECT element_count, null_user_id, null_title_id, null_ts, ts_out_of_bounds, unknown_title_id, duplicate_rows
FROM per_row, unknown_titles, repeated
