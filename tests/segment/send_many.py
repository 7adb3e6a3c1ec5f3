"""Sends N track calls with Segment's own Python SDK in its default mode (a background thread
batching up to 100 calls per /v1/batch request), then re-sends the first 500 with the same
messageIds, as an SDK retrying after a lost answer would. Started by tests/it/segment_api.rs.
Usage: python send_many.py HOST WRITE_KEY N. Exits 1 if the SDK reports an error."""
import sys

import segment.analytics as analytics

host, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors = []
analytics.write_key = key
analytics.host = host
analytics.max_queue_size = 2 * n  # nothing dropped for a full queue
analytics.on_error = lambda e, batch: errors.append(repr(e))
for i in list(range(n)) + list(range(500)):
    analytics.track(f"user-{i % 700}", "Product Viewed" if i % 2 else "Product Added",
                    {"product_id": f"p-{i % 90}", "price": 10 + i % 7, "seq": i},
                    anonymous_id=f"anon-{i % 900}", message_id=f"bulk-{i:06d}")
analytics.flush()
analytics.shutdown()
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"sent {n} + 500 again")
