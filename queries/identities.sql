-- identities: which user each visitor was linked to by an `identify` event.
-- The earliest identify of a visitor wins (a later login on the same device by someone else
-- does not re-attribute that visitor's anonymous history).
SELECT
  site,
  visitor_id,
  first_value(user_id ORDER BY ts, event_id) AS user_id,
  min(ts) AS identified_at
FROM events
WHERE name = 'identify' AND user_id IS NOT NULL
GROUP BY site, visitor_id
