-- Rows that break "Y' is disjoint from X and Y": window pairs that overlap, and stored events that fall in
-- Y' and in a training window at once. Checked on the stored bounds and events, not trusted by construction.
WITH w AS (
    SELECT window_name, window_start, window_end
    FROM {{ ref('split_windows') }}
    WHERE scoring_week = $scoring_week
)
SELECT 'overlapping windows' AS problem, t.window_name AS training_window, NULL::BIGINT AS user_id,
       NULL::BIGINT AS title_id, NULL::TIMESTAMP AS ts
FROM w AS yp
JOIN w AS t ON t.window_name IN ('X', 'Y') AND t.window_start < yp.window_end AND yp.window_start < t.window_end
WHERE yp.window_name = 'Y_prime'
UNION ALL
SELECT 'event in Y'' and a training window' AS problem, t.window_name, e.user_id, e.title_id, e.ts
FROM {{ ref('raw_watch_events') }} AS e
JOIN w AS yp ON yp.window_name = 'Y_prime' AND e.ts >= yp.window_start AND e.ts < yp.window_end
JOIN w AS t ON t.window_name IN ('X', 'Y') AND e.ts >= t.window_start AND e.ts < t.window_end
