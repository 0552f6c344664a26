#!/usr/bin/env node
// Runs ELM JSON libraries with the reference engine (cql-execution + cql-exec-fhir, FHIR 4.0.1).
// Input (stdin, JSON): {"runs": [{"elm": <ELM library>, "bundle": <FHIR Bundle>}], "repeat": n}
// (repeat > 1: each run once to warm up, then timed repeat - 1 times; ms_per_run is null otherwise)
// Output (stdout, JSON): {"results": [{define name: value}], "ms_per_run": [..]} (values as JSON:
// dates and codes as their CQL string forms, decimals as numbers).
'use strict';
const cql = require('cql-execution');
const cqlfhir = require('cql-exec-fhir');

function plain(v) {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  if (v.isDate || v.isDateTime) return v.toString();
  if (v.isQuantity) return { value: v.value, unit: v.unit };
  if (typeof v.toJSON === 'function') return v.toJSON();
  return String(v);
}

// The FHIR 4.0.1 model info is parsed once (it takes most of a cold run); a library is built
// once per distinct ELM text. Timings cover execution only, as the Python side's do.
const source = cqlfhir.PatientSource.FHIRv401();
const executors = new Map();

function executorFor(elm) {
  const key = JSON.stringify(elm);
  let found = executors.get(key);
  if (found === undefined) {
    found = new cql.Executor(new cql.Library(elm));
    executors.set(key, found);
  }
  return found;
}

async function runOne(executor, bundle) {
  source.reset();
  source.loadBundles([bundle]);
  const results = await executor.exec(source);
  const ids = Object.keys(results.patientResults);
  const out = {};
  if (ids.length === 0) return out;
  for (const [name, value] of Object.entries(results.patientResults[ids[0]])) {
    if (name !== 'Patient') out[name] = plain(value);
  }
  return out;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const repeat = input.repeat || 1;
  const results = [];
  const ms = [];
  for (const run of input.runs) {
    const executor = executorFor(run.elm);
    let got = await runOne(executor, run.bundle); // warm-up, and the answer
    const t0 = process.hrtime.bigint();
    for (let i = 1; i < repeat; i++) got = await runOne(executor, run.bundle);
    ms.push(repeat > 1 ? Number(process.hrtime.bigint() - t0) / 1e6 / (repeat - 1) : null);
    results.push(got);
  }
  process.stdout.write(JSON.stringify({ results, ms_per_run: ms }));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
