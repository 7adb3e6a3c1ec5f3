-- person_events: every event with the person it belongs to. `events` itself now carries the
-- resolved `person_id` (see docs/storage.md, "People"); this view stays for queries written
-- against it. person_id is 'u:' || user_id for identified people (the event's own user_id
-- first, else the user its visitor was identified as, which covers anonymous events before
-- login and every device the user logged in on), and 'v:' || visitor_id for anonymous visitors.
SELECT * FROM events
