-- wrk script: one pageview per request (no event_id, so every request is stored).
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
wrk.body = '{"site":"default","name":"pageview","url":"https://shop.example/products/mug?utm_source=newsletter&utm_medium=email","referrer":"https://www.google.com/"}'
