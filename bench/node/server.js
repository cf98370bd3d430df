// server.js — the Node.js reference server of bench/http-compare.sh. Not part of pqpool.
//
// It answers the two database routes of the spec (../shared/spec/phase-3-database-connection.md,
// "API Endpoints") the way the spec's Node.js app does, so that `pqpool serve` can be measured
// side by side against it:
//   GET /api/health/database   checkDatabaseHealth(): `SELECT 1` through the shared pg Pool on
//                              every request; 200 healthy, 503 unhealthy (DESIGN.md §2 shape)
//   GET /api/metrics/database  the spec's DatabaseMetricsCollector over pool.totalCount/idleCount/
//                              waitingCount (its averageResponseTime and errorRate stay the spec's 0)
// One process, one pg Pool (max 20 by default), Node's plain `http` module, no framework, no
// clustering. Settings from the environment, as the spec reads them: DATABASE_URL (or the
// POSTGRES_* parts), DB_POOL_MAX, DB_IDLE_TIMEOUT, DB_CONNECTION_TIMEOUT, NODE_ENV; HOST and
// PORT (default 127.0.0.1:3000, PORT=0 = any free port). Like pqpool serve, it prints
// `listening on http://HOST:PORT` on stderr once it accepts connections.
"use strict";

const http = require("node:http");
const { performance } = require("node:perf_hooks");
const { Pool } = require("pg");

const env = process.env;
const DATABASE_URL =
  env.DATABASE_URL ||
  `postgresql://${env.POSTGRES_USER || "hyperpage"}:${env.POSTGRES_PASSWORD || "password"}` +
    `@${env.POSTGRES_HOST || "localhost"}:${env.POSTGRES_PORT || "5432"}/${env.POSTGRES_DB || "hyperpage"}` +
    `?sslmode=${env.NODE_ENV === "production" ? "require" : "disable"}`;

const pool = new Pool({
  connectionString: DATABASE_URL,
  max: Number(env.DB_POOL_MAX || 20),
  idleTimeoutMillis: env.DB_IDLE_TIMEOUT ? Number(env.DB_IDLE_TIMEOUT) : 30_000, // 0 = never
  connectionTimeoutMillis: Number(env.DB_CONNECTION_TIMEOUT || 5_000),
  ssl: env.NODE_ENV === "production" ? { rejectUnauthorized: false } : false,
});
// An idle client that loses its server emits 'error' on the pool; without a listener Node exits.
pool.on("error", (err) => console.error(`pool: idle client error: ${err.message}`));

// The spec's checkDatabaseHealth(), with a monotonic clock (fractions of a millisecond, as
// DESIGN §2 asks of responseTime) instead of Date.now().
async function checkDatabaseHealth() {
  const start = performance.now();
  try {
    await pool.query("SELECT 1");
    return { status: "healthy", responseTime: performance.now() - start };
  } catch (err) {
    return {
      status: "unhealthy",
      responseTime: performance.now() - start,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

// The spec's DatabaseMetricsCollector, reduced to what the route uses. The values are read on
// every call (the spec's route returned the previous call's snapshot; pqpool must not).
function collectMetrics() {
  const total = pool.totalCount;
  const idle = pool.idleCount;
  const waiting = pool.waitingCount;
  const active = total - idle;
  const metrics = {
    totalConnections: total,
    activeConnections: active,
    idleConnections: idle,
    waitingConnections: waiting,
    poolUtilization: (active / (pool.options.max || 20)) * 100,
    averageResponseTime: 0, // the spec's stub
    errorRate: 0, // the spec's stub
    lastActivity: new Date(),
  };
  const u = metrics.poolUtilization;
  const recommendations = [];
  if (waiting > 0) recommendations.push("Consider increasing pool size");
  if (u > 80) recommendations.push("Pool utilization is critically high");
  const status = {
    healthy: metrics.errorRate < 5,
    utilization: u > 80 ? "critical" : u > 60 ? "high" : u > 40 ? "medium" : "low",
    recommendations,
  };
  return { metrics, status, timestamp: new Date().toISOString() };
}

function send(req, res, code, body, extra) {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "Content-Length": Buffer.byteLength(text),
    ...extra,
  });
  res.end(req.method === "HEAD" ? undefined : text);
}

async function healthRoute(req, res) {
  try {
    const h = await checkDatabaseHealth();
    const data = {
      responseTime: h.responseTime,
      connectionCount: pool.totalCount,
      lastCheck: new Date().toISOString(),
    };
    if (h.error !== undefined) data.error = h.error;
    send(req, res, h.status === "unhealthy" ? 503 : 200, { status: h.status, data });
  } catch {
    send(req, res, 503, { status: "unhealthy", data: { error: "Database health check failed" } });
  }
}

function metricsRoute(req, res) {
  try {
    send(req, res, 200, collectMetrics());
  } catch {
    send(req, res, 500, {
      error: "Failed to collect database metrics",
      timestamp: new Date().toISOString(),
    });
  }
}

const routes = {
  "/api/health/database": healthRoute,
  "/api/metrics/database": metricsRoute,
};

const server = http.createServer((req, res) => {
  const q = req.url.indexOf("?");
  const route = routes[q < 0 ? req.url : req.url.slice(0, q)];
  if (!route) return send(req, res, 404, { error: "Not found" });
  if (req.method !== "GET" && req.method !== "HEAD")
    return send(req, res, 405, { error: "Method not allowed" }, { Allow: "GET, HEAD" });
  route(req, res);
});

const host = env.HOST || "127.0.0.1";
server.listen(env.PORT ? Number(env.PORT) : 3000, host, () => {
  const { port } = server.address();
  console.error(
    `node ${process.version}, pg ${require("pg/package.json").version}, pool max ${pool.options.max}: ` +
      `listening on http://${host}:${port}`,
  );
});

function shutdown() {
  server.close();
  server.closeIdleConnections();
  pool.end().then(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
