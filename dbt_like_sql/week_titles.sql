-- Every title available in the scoring week, one row each, cold-start titles included: the item tower's
-- candidates. A title is available once acquired (or, without an acquisition date, once first watched)
-- before the week ends. id_known: watched in the training period (X or Y), so it has a trained ID embedding.
WITH windows AS (
    SELECT window_name, window_start, window_end
    FROM {{ ref('split_windows') }}
    WHERE scoring_week = $scoring_week
),
window_titles AS (
    SELECT
        e.title_id,
        bool_or(w.window_name IN ('X', 'Y')) AS in_training,
        bool_or(w.window_name IN ('X', 'Y', 'X_prime')) AS in_history,
        bool_or(w.window_name = 'Y_prime') AS in_labels
    FROM {{ ref('raw_watch_events') }} AS e
    JOIN windows AS w ON e.ts >= w.window_start AND e.ts < w.window_end
    GROUP BY e.title_id
),
first_watch AS (
    SELECT title_id, min(ts) AS first_watch FROM {{ ref('raw_watch_events') }} GROUP BY title_id
)
SELECT
    $scoring_week::DATE AS scoring_week,
    t.title_id,
    t.category,
    coalesce(wt.in_history, false) AS is_warm,
    c.title_id IS NOT NULL AS is_cold_start,
    coalesce(wt.in_training, false) AS id_known,
    coalesce(wt.in_labels, false) AS watched_in_week
FROM {{ ref('raw_titles') }} AS t
LEFT JOIN window_titles AS wt ON wt.title_id = t.title_id
LEFT JOIN first_watch AS f ON f.title_id = t.title_id
LEFT JOIN {{ ref('cold_start_titles') }} AS c ON c.title_id = t.title_id AND c.scoring_week = $scoring_week
WHERE coalesce(t.acquisition_date::TIMESTAMP, f.first_watch) < $yp_end::TIMESTAMP
ORDER BY t.title_id
