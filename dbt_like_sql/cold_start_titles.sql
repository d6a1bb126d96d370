-- Cold-start titles of the scoring week: at least one watch in Y' and none in X, Y or X' (the paper, section 4.1).
WITH windows AS (
    SELECT window_name, window_start, window_end
    FROM {{ ref('split_windows') }}
    WHERE scoring_week = $scoring_week
),
label_watches AS (
    SELECT e.title_id, count(*) AS label_watches, count(DISTINCT e.user_id) AS label_users
    FROM {{ ref('raw_watch_events') }} AS e
    JOIN windows AS w ON w.window_name = 'Y_prime' AND e.ts >= w.window_start AND e.ts < w.window_end
    GROUP BY e.title_id
),
history_titles AS (
    SELECT DISTINCT e.title_id
    FROM {{ ref('raw_watch_events') }} AS e
    JOIN windows AS w ON w.window_name IN ('X', 'Y', 'X_prime') AND e.ts >= w.window_start AND e.ts < w.window_end
)
SELECT
    $scoring_week::DATE AS scoring_week,
    l.title_id,
    t.category,
    t.acquisition_date,
    l.label_watches,
    l.label_users
FROM label_watches AS l
JOIN {{ ref('raw_titles') }} AS t ON t.title_id = l.title_id
ANTI JOIN history_titles AS h ON h.title_id = l.title_id
ORDER BY l.title_id
