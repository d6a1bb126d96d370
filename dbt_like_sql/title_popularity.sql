-- Title popularity as of the end of each history window it serves: 'train' as of the end of X, 'score' as
-- of the end of X'. Shares are log(views / all views) over the history span and over the recent span;
-- no later event can reach them. Titles without a view in the long span have no row.
WITH as_of AS (
    SELECT context, as_of
    FROM (VALUES ('train', $x_end::TIMESTAMP), ('score', $xp_end::TIMESTAMP)) AS v (context, as_of)
),
views AS (
    SELECT
        a.context,
        a.as_of,
        e.title_id,
        count(*) AS views_long,
        count(*) FILTER (WHERE e.ts >= a.as_of - to_days($recent_popularity_days::INTEGER)) AS views_recent
    FROM as_of AS a
    JOIN {{ ref('raw_watch_events') }} AS e
        ON e.ts < a.as_of AND e.ts >= a.as_of - to_days($history_days::INTEGER)
    GROUP BY ALL
)
SELECT
    $scoring_week::DATE AS scoring_week,
    context,
    as_of,
    title_id,
    views_long,
    views_recent,
    ln(views_long / sum(views_long) OVER (PARTITION BY context)) AS share_long_log,
    CASE WHEN views_recent > 0
        THEN ln(views_recent / sum(views_recent) OVER (PARTITION BY context)) END AS share_recent_log
FROM views
ORDER BY context, title_id
