-- wrk script for bench/webhook.sh: POSTs the AdmissionReview in $WH_BODY to /validate-image-cache and
-- counts non-200 replies (wrk only reports socket errors and non-2xx/3xx on its own).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("WH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("non200: %d\n", bad))
end
