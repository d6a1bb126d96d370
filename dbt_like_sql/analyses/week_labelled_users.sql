-- How many users have an event in the label windows of a scoring week: Y (training labels) and Y' (scoring labels).
SELECT
    count(DISTINCT user_id) FILTER (WHERE ts >= $y_start::TIMESTAMP AND ts < $y_end::TIMESTAMP) AS label_users,
    count(DISTINCT user_id) FILTER (WHERE ts >= $yp_start::TIMESTAMP AND ts < $yp_end::TIMESTAMP) AS scoring_users
FROM {{ ref('raw_watch_events') }}
WHERE ts >= $y_start::TIMESTAMP AND ts < $yp_end::TIMESTAMP
