-- wrk script: a batch of 100 mixed shop events per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
local events = {}
for i = 1, 100 do
  if i % 10 == 0 then
    events[i] = '{"site":"default","name":"purchase","revenue":42.5,"currency":"EUR","order_id":"o' .. i .. '","items":[{"id":"sku-1","price":21.25,"quantity":2}]}'
  else
    events[i] = '{"site":"default","name":"pageview","url":"https://shop.example/p/' .. i .. '","referrer":"https://www.google.com/","props":{"ab":"b"}}'
  end
end
wrk.body = "[" .. table.concat(events, ",") .. "]"
