"""Segment API throughput: BATCHES requests of SIZE track calls each to /v1/batch, 8 at a time
(Python's standard library only); with MODE `event`, the same events in footfall's own shape to
/api/event (arrays of SIZE, the write key as Bearer), to compare the two. Usage:
  footfall site add shop --data /tmp/segbench   # prints the write key
  footfall serve --data /tmp/segbench --listen 127.0.0.1:8120 &
  python3 bench/segment_batch.py http://127.0.0.1:8120 WRITE_KEY 500 100 [segment|event]
"""
import base64, json, sys, time, uuid, urllib.request, concurrent.futures as cf
host, key, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "segment"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
def body(b):
    calls = []
    for i in range(size):
        n = b * size + i
        calls.append({"type": "track", "event": "Product Viewed" if i % 3 else "Page Viewed", "anonymousId": f"a-{n % 5000}",
                      "messageId": str(uuid.uuid4()), "properties": {"product_id": f"p-{n % 120}", "price": 12.5},
                      "context": {"ip": f"198.51.100.{n % 250}", "userAgent": UA},
                      "timestamp": "2026-11-30T03:00:00Z"})
    return json.dumps({"batch": calls, "sentAt": "2026-11-30T03:00:01Z"}).encode()
def event_body(b):
    # What /v1/batch stores for body(b), sent as footfall events (Product Viewed is product_view
    # with its product as the one item; the other call keeps its name).
    events = []
    for i in range(size):
        n = b * size + i
        e = {"event_id": uuid.uuid4().hex, "site": "shop", "visitor_id": f"a-{n % 5000}",
             "timestamp": "2026-11-30T03:00:00Z", "sent_at": "2026-11-30T03:00:01Z"}
        if i % 3:
            e |= {"name": "product_view", "items": [{"id": f"p-{n % 120}", "price": 12.5}]}
        else:
            e |= {"name": "Page Viewed", "props": {"product_id": f"p-{n % 120}", "price": 12.5}}
        events.append(e)
    return json.dumps(events).encode()
if mode == "event":
    bodies, path = [event_body(b) for b in range(batches)], "/api/event"
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "user-agent": UA}
else:
    bodies, path = [body(b) for b in range(batches)], "/v1/batch"
    headers = {"authorization": auth, "content-type": "application/json"}
def send(data):
    r = urllib.request.urlopen(urllib.request.Request(host + path, data=data, headers=headers))
    assert r.status in (200, 202), r.status
t = time.time()
with cf.ThreadPoolExecutor(8) as ex:
    list(ex.map(send, bodies))
dt = time.time() - t
print(f"{mode}: {batches} batches of {size}: {batches*size} calls in {dt:.2f} s = {batches*size/dt:,.0f} calls/s, {batches/dt:,.0f} requests/s")
