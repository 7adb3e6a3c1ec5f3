"""Sends calls with RudderStack's Python SDK (rudder-sdk-python, gzip on by default) to a footfall
started by tests/it/segment_api.rs. Usage: python send_rudder.py HOST WRITE_KEY."""
import sys

import rudderstack.analytics as analytics

host, key = sys.argv[1], sys.argv[2]
errors = []
analytics.write_key = key
analytics.dataPlaneUrl = host
analytics.sync_mode = True
analytics.gzip = True
analytics.on_error = lambda e, batch: errors.append(repr(e))
analytics.track("r-1", "Order Completed",
                {"order_id": "r-order-1", "revenue": 20, "currency": "USD", "products": [{"sku": "tea-3", "price": 10, "quantity": 2}]},
                anonymous_id="rudder-anon-1", message_id="rudder-order-01")
analytics.page("r-1", None, "Pricing", {"url": "https://shop.example/pricing"}, anonymous_id="rudder-anon-1", message_id="rudder-page-001")
analytics.flush()
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("sent")
