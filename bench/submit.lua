-- wrk script: POST a PAS request whose Claim.identifier is unique per request,
-- so every request is a new submission (not an idempotent resubmission).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("PRIORAUTH_BENCH_BODY"), "rb"))
  template = f:read("*a")
  f:close()
  prefix = os.getenv("PRIORAUTH_BENCH_RUN") or "run"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/fhir+json"
end

function request()
  counter = counter + 1
  local body = template:gsub("__TRACE__", prefix .. "-" .. tid .. "-" .. counter, 1)
  return wrk.format(nil, "/fhir/Claim/$submit", nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    bad = (bad or 0) + 1
  end
end

function done(summary, latency, requests)
  local non201 = 0
  for _, t in ipairs(threads) do
    non201 = non201 + (t:get("bad") or 0)
  end
  io.write(string.format("NON201 %d\n", non201))
  for _, p in ipairs({50, 99}) do
    io.write(string.format("P%d %.3f\n", p, latency:percentile(p) / 1000.0))
  end
  io.write(string.format("REQS %d\nSECS %.3f\nERRS %d\n", summary.requests,
    summary.duration / 1e6, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.status + summary.errors.timeout))
end
