-- wrk script: the baseline, GET /fhir/metadata (the same server, no database work).
function done(summary, latency, requests)
  io.write("NON201 0\n")
  for _, p in ipairs({50, 99}) do
    io.write(string.format("P%d %.3f\n", p, latency:percentile(p) / 1000.0))
  end
  io.write(string.format("REQS %d\nSECS %.3f\nERRS %d\n", summary.requests,
    summary.duration / 1e6, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.status + summary.errors.timeout))
end
