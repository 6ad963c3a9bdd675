// The BullMQ peer: the same work per job as outq's webhook send — POST the
// message to the provider over a keep-alive pool, check the status, and let
// BullMQ record the completion (its return value is the stored result).
// usage: node worker.mjs REDIS_PORT URL CONCURRENCY [CA_FILE]
import { readFileSync } from "node:fs";
import { Worker } from "bullmq";
import IORedis from "ioredis";
import { Pool } from "undici";

const [port, url, concurrency, caFile] = [Number(process.argv[2]), new URL(process.argv[3]),
                                          Number(process.argv[4]), process.argv[5]];
const pool = new Pool(url.origin, {
  connections: concurrency,
  keepAliveTimeout: 60_000,
  connect: caFile ? { ca: readFileSync(caFile) } : undefined,
});
const worker = new Worker("bench", async (job) => {
  const response = await pool.request({
    path: url.pathname, method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": job.id },
    body: JSON.stringify(job.data.message),
  });
  const text = await response.body.text();
  if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`HTTP ${response.statusCode}`);
  return { status: response.statusCode, bytes: text.length };
}, { connection: new IORedis({ host: "127.0.0.1", port, maxRetriesPerRequest: null }), concurrency });
worker.on("error", (e) => console.error("worker error", e));
const stop = async () => { await worker.close(); await pool.close(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
