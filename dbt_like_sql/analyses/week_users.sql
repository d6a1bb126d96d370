-- The users of a scoring week, one row each in user_id order: every user of the users file, plus every user with an
-- event before the end of Y' whom the users file lacks (all of them when a source has none), features unknown.
SELECT *
FROM {{ ref('raw_users') }}
FULL OUTER JOIN (
    SELECT DISTINCT user_id
    FROM {{ ref('raw_watch_events') }}
    WHERE ts < $yp_end::TIMESTAMP
) AS event_users USING (user_id)
ORDER BY user_id
