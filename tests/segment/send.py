"""Sends calls with Segment's own Python SDK (segment-analytics-python) to a footfall started by
tests/it/segment_api.rs. Usage: python send.py HOST WRITE_KEY. Exits 1 if the SDK reports an error."""
import sys
from datetime import datetime, timedelta, timezone

import segment.analytics as analytics

host, key = sys.argv[1], sys.argv[2]
errors = []
analytics.write_key = key
analytics.host = host
analytics.sync_mode = True  # each call is sent at once, as its own /v1/batch request
analytics.on_error = lambda e, batch: errors.append(repr(e))

anon = "anon-0001"
analytics.identify("u-1", {"plan": "pro"}, anonymous_id=anon, context={"ip": "192.0.2.7"})
analytics.page("u-1", None, "Home", {"url": "https://shop.example/?utm_source=newsletter&utm_medium=email", "referrer": ""},
               anonymous_id=anon, message_id="msg-page-0001")
analytics.track("u-1", "Product Viewed", {"product_id": "pot-1", "name": "Teapot", "category": "teapots", "price": 30},
                anonymous_id=anon, message_id="msg-view-0001")
order = {"order_id": "o-1", "total": 45.5, "currency": "EUR", "coupon": "SPRING",
         "products": [{"product_id": "pot-1", "price": 30, "quantity": 1, "category": "teapots"},
                      {"product_id": "mug-2", "price": 15.5, "quantity": 1, "category": "mugs"}]}
analytics.track("u-1", "Order Completed", order, anonymous_id=anon, message_id="msg-order-0001")
# The SDK retrying the same message: stored once.
analytics.track("u-1", "Order Completed", order, anonymous_id=anon, message_id="msg-order-0001")
analytics.group("u-1", "acme", {"name": "Acme"})
analytics.alias(anon, "u-1")
# History: an order of 30 days ago is stored on its own day.
old = datetime.now(timezone.utc) - timedelta(days=30)
analytics.track("u-1", "Order Completed", {"order_id": "o-0", "revenue": 10, "currency": "EUR"},
                timestamp=old, anonymous_id=anon, message_id="msg-old-00001")
analytics.flush()
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"sent; history day {old.date().isoformat()}")
