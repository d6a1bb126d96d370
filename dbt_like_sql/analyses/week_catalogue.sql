-- The titles available in a scoring week with their metadata and flags, one row each, in title_id order.
SELECT t.*, w.is_warm, w.is_cold_start, w.id_known, w.watched_in_week
FROM {{ ref('week_titles') }} AS w
JOIN {{ ref('raw_titles') }} AS t ON t.title_id = w.title_id
WHERE w.scoring_week = $scoring_week
ORDER BY t.title_id
