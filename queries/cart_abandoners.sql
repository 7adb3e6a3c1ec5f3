-- People who viewed a product, added to the cart within 10 minutes of a view, and did not buy
-- afterwards: a retargeting audience, with the times of that view and that add to cart.
SELECT
  person_id,
  sequence_match_events('(?1)(?t<=600)(?2)', ts,
                        name = 'product_view', name = 'add_to_cart', name = 'purchase') AS viewed_and_added_at
FROM person_events
WHERE name IN ('product_view', 'add_to_cart', 'purchase')
GROUP BY person_id
HAVING sequence_match('(?1)(?t<=600)(?2)', ts, name = 'product_view', name = 'add_to_cart', name = 'purchase')
   AND NOT sequence_match('(?1)(?t<=600)(?2).*(?3)', ts,
                          name = 'product_view', name = 'add_to_cart', name = 'purchase')
ORDER BY person_id
