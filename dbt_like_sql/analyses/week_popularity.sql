-- Title popularity of a scoring week as of the end of one history window ('train': X, 'score': X').
SELECT title_id, views_long, views_recent, share_long_log, share_recent_log
FROM {{ ref('title_popularity') }}
WHERE scoring_week = $scoring_week AND context = $context
ORDER BY title_id
