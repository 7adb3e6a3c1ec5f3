-- wrk script for the soak: batches of 10 shop events, each connection pausing between requests.
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
local names = {"pageview", "pageview", "pageview", "product_view", "product_view", "add_to_cart", "checkout_start", "pageview", "pageview", "signup"}
local n = 0
request = function()
  local items = {}
  for i = 1, 10 do
    n = n + 1
    items[i] = string.format('{"site":"default","name":"%s","url":"https://shop.example/p/%d?utm_source=s%d","referrer":"https://www.google.com/","visitor_id":"v%d"}',
      names[i], n % 500, n % 7, n % 20000)
  end
  return wrk.format(nil, nil, nil, "[" .. table.concat(items, ",") .. "]")
end
-- Milliseconds between one connection's requests.
delay = function() return 40 end
