-- person_events: every event with the person it belongs to.
-- person_id is 'u:' || user_id for identified people (the event's own user_id first, else the
-- user its visitor was identified as, which covers anonymous events before login and every
-- device the user logged in on), and 'v:' || visitor_id for anonymous visitors. The prefixes
-- keep a user id from ever colliding with a visitor id.
SELECT
  e.*,
  CASE
    WHEN coalesce(e.user_id, i.user_id) IS NOT NULL THEN 'u:' || coalesce(e.user_id, i.user_id)
    ELSE 'v:' || e.visitor_id
  END AS person_id
FROM events e
LEFT JOIN identities i ON e.site = i.site AND e.visitor_id = i.visitor_id
