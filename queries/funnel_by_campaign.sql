-- View → cart → purchase within a day, per person, broken down by the campaign of their first event.
SELECT
  campaign,
  count(*) AS people,
  count(*) FILTER (WHERE level >= 2) AS added_to_cart,
  count(*) FILTER (WHERE level >= 3) AS purchased
FROM (
  SELECT
    person_id,
    first_value(campaign ORDER BY ts) AS campaign,
    window_funnel(86400, '', ts, name = 'product_view', name = 'add_to_cart', name = 'purchase') AS level
  FROM person_events
  GROUP BY person_id
)
WHERE level >= 1
GROUP BY campaign
ORDER BY people DESC, campaign NULLS LAST
