-- Watch events of one window [window_start, window_end), in time order per user: histories and labels.
SELECT user_id, title_id, ts
FROM {{ ref('raw_watch_events') }}
WHERE ts >= $window_start::TIMESTAMP AND ts < $window_end::TIMESTAMP
ORDER BY user_id, ts, title_id
