-- Average order value by channel (revenue per distinct order).
SELECT
  channel,
  count(DISTINCT order_id) AS orders,
  sum(revenue) AS revenue,
  CAST(sum(revenue) / count(DISTINCT order_id) AS DECIMAL(18, 2)) AS average_order_value
FROM events
WHERE name = 'purchase'
GROUP BY channel
ORDER BY revenue DESC, channel
