-- Tags of the titles available in a scoring week as they stood at $tags_before (the end of a phase's history
-- window): each (title, tag) applied strictly before it, with how many times; no later application counts.
SELECT g.title_id, g.tag, count(*) AS applications
FROM {{ ref('raw_title_tags') }} AS g
JOIN {{ ref('week_titles') }} AS w ON w.title_id = g.title_id
WHERE w.scoring_week = $scoring_week AND g.ts < $tags_before::TIMESTAMP
GROUP BY g.title_id, g.tag
ORDER BY g.title_id, g.tag
