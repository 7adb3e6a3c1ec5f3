-- Top pages: pageviews and unique visitors per path.
SELECT path, count(*) AS pageviews, count(DISTINCT visitor_id) AS visitors
FROM events
WHERE name = 'pageview'
GROUP BY path
ORDER BY pageviews DESC, path
LIMIT 50
