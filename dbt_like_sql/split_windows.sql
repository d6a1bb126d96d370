-- The four half-open windows of the scoring week (X, Y, X', Y') with the events, users and titles in each.
-- Events are not copied: later models and loaders select them from raw_watch_events by these bounds.
SELECT
    $scoring_week::DATE AS scoring_week,
    w.window_name,
    w.window_start,
    w.window_end,
    count(e.ts) AS events,
    count(DISTINCT e.user_id) AS users,
    count(DISTINCT e.title_id) AS titles
FROM (
    VALUES
        ('X', $x_start::TIMESTAMP, $x_end::TIMESTAMP),
        ('Y', $y_start::TIMESTAMP, $y_end::TIMESTAMP),
        ('X_prime', $xp_start::TIMESTAMP, $xp_end::TIMESTAMP),
        ('Y_prime', $yp_start::TIMESTAMP, $yp_end::TIMESTAMP)
) AS w (window_name, window_start, window_end)
LEFT JOIN {{ ref('raw_watch_events') }} AS e
    ON e.ts >= w.window_start AND e.ts < w.window_end
GROUP BY ALL
ORDER BY w.window_start, w.window_name
