// spec.js — the specification's load test ("Performance Testing") in Node.js
// with a pg Pool of 20, repeated: rounds of 50 concurrent
// `SELECT $1 as test, NOW() as timestamp`. The reference for
// `pqpool bench spec`; not part of the service.
//   DATABASE_URL=... node spec.js [seconds]     prints one JSON line
"use strict";
const { Pool } = require("pg");

const seconds = Number(process.argv[2] || 10);
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 20 });

async function round(lat) {
  const queries = Array.from({ length: 50 }, async (_, i) => {
    const start = process.hrtime.bigint();
    await pool.query("SELECT $1 as test, NOW() as timestamp", [i]);
    lat.push(Number(process.hrtime.bigint() - start) / 1e6);
  });
  await Promise.all(queries);
}

async function main() {
  const warm = [];
  await round(warm); // connections opened, not counted
  const lat = [];
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let rounds = 0;
  while (Number(process.hrtime.bigint() - t0) / 1e9 < seconds) {
    await round(lat);
    rounds++;
  }
  const el = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(JSON.stringify({
    name: "node pg Pool", rounds, seconds: el, rounds_per_s: rounds / el,
    queries: lat.length, client_cpu_us_per_op: (cpu.user + cpu.system) / lat.length,
    latency_ms: { mean: lat.reduce((a, b) => a + b, 0) / lat.length, min: lat[0],
                  p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] },
  }));
  await pool.end();
}
main().catch((e) => { console.error(e.message); process.exit(1); });
