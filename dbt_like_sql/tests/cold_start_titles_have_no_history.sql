-- Cold-start titles that break their definition: a watch in X, Y or X', or no watch in Y'.
WITH w AS (
    SELECT window_name, window_start, window_end
    FROM {{ ref('split_windows') }}
    WHERE scoring_week = $scoring_week
),
cold AS (
    SELECT title_id FROM {{ ref('cold_start_titles') }} WHERE scoring_week = $scoring_week
),
watches AS (
    SELECT
        c.title_id,
        count(DISTINCT (e.user_id, e.ts)) FILTER (WHERE w.window_name IN ('X', 'Y', 'X_prime')) AS history_watches,
        count(DISTINCT (e.user_id, e.ts)) FILTER (WHERE w.window_name = 'Y_prime') AS label_watches
    FROM cold AS c
    LEFT JOIN {{ ref('raw_watch_events') }} AS e ON e.title_id = c.title_id
    LEFT JOIN w ON e.ts >= w.window_start AND e.ts < w.window_end
    GROUP BY c.title_id
)
SELECT title_id, history_watches, label_watches
FROM watches
WHERE history_watches > 0 OR label_watches = 0
