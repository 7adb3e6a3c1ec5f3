-- Acquisition: visitors, sessions and revenue by channel and source.
SELECT
  channel,
  source,
  count(DISTINCT visitor_id) AS visitors,
  count(DISTINCT session_id) AS sessions,
  coalesce(sum(revenue) FILTER (WHERE name = 'purchase'), 0) AS revenue
FROM events
GROUP BY channel, source
ORDER BY visitors DESC, channel, source
