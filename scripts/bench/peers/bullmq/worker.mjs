// The BullMQ side of scripts/bench/send-n.sh: per job, the work outq's webhook
// provider does — POST the job's message as JSON over a keep-alive pool,
// read the answer, fail on a non-2xx status, and return the status and a body
// excerpt, which BullMQ stores with the completed job.
// With --limit-max M (and --limit-duration MS, default 1000) the Worker runs
// under BullMQ's own queue rate limiter, limiter: {max: M, duration: MS}
// (scripts/bench/isolation.py --throttled).
//   node worker.mjs --port P --url URL [--concurrency 50] [--connections C] [--ca FILE] [--queue bench]
//                   [--limit-max M [--limit-duration MS]]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Worker } from "bullmq";
import IORedis from "ioredis";
import { Pool } from "undici";

const { values: opt } = parseArgs({
  options: {
    port: { type: "string" }, url: { type: "string" }, queue: { type: "string", default: "bench" },
    concurrency: { type: "string", default: "50" }, connections: { type: "string" }, ca: { type: "string" },
    "limit-max": { type: "string" }, "limit-duration": { type: "string", default: "1000" },
  },
});
if (!opt.port || !opt.url) {
  console.error("usage: node worker.mjs --port P --url URL [--concurrency N] [--connections C] [--ca FILE]");
  process.exit(2);
}
const url = new URL(opt.url);
const concurrency = Number(opt.concurrency);
const pool = new Pool(url.origin, {
  connections: Number(opt.connections ?? concurrency),
  pipelining: 1,
  keepAliveTimeout: 60_000,
  connect: opt.ca ? { ca: readFileSync(opt.ca) } : undefined,
});
const path = url.pathname + url.search;

async function send(job) {
  const answer = await pool.request({
    path, method: "POST", body: JSON.stringify(job.data.message),
    headers: { "content-type": "application/json", "idempotency-key": String(job.id),
               "x-outq-attempt": String(job.attemptsMade + 1) },
  });
  const text = await answer.body.text();
  if (answer.statusCode < 200 || answer.statusCode > 299) {
    throw new Error(`HTTP ${answer.statusCode}: ${text.slice(0, 200)}`);
  }
  return { http_status: answer.statusCode, response: text.slice(0, 1024) };
}

const connection = new IORedis({ host: "127.0.0.1", port: Number(opt.port), maxRetriesPerRequest: null });
const options = { connection, concurrency };
if (opt["limit-max"]) {
  options.limiter = { max: Number(opt["limit-max"]), duration: Number(opt["limit-duration"]) };
}
const worker = new Worker(opt.queue, send, options);
worker.on("error", (e) => console.error("bullmq worker error:", e));
worker.on("failed", (job, e) => console.error(`job ${job?.id} failed: ${e.message}`));

let stopping = false;
async function stop() {
  if (stopping) process.exit(1);
  stopping = true;
  await worker.close();
  await pool.close();
  connection.disconnect();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
