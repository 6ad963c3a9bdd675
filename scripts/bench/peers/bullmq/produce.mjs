// The open-loop producer of scripts/bench/latency.py for BullMQ: job i is due
// to be enqueued at t0 + i / rate (its schedule); whatever is due is added at
// once (Queue.addBulk), so a slow add never slows the schedule down. Each job
// has the id "lat-<i>" (the Idempotency-Key the worker sends) and the message
// from OUTQ_BENCH_MESSAGE. With --delay-ms D each job is a delayed job due D
// ms after its schedule. Prints one JSON line: how late the adds were.
//   node produce.mjs --port P --rate R --count N --t0-us T [--delay-ms D] [--queue bench]
import { parseArgs } from "node:util";
import { Queue } from "bullmq";
import IORedis from "ioredis";

const { values: opt } = parseArgs({
  options: {
    port: { type: "string" }, rate: { type: "string" }, count: { type: "string" }, "t0-us": { type: "string" },
    "delay-ms": { type: "string", default: "0" }, queue: { type: "string", default: "bench" },
  },
});
const rate = Number(opt.rate), count = Number(opt.count), t0 = Number(opt["t0-us"]);
const delay = Number(opt["delay-ms"]);
const template = process.env.OUTQ_BENCH_MESSAGE;
if (!opt.port || !(rate > 0) || !(count > 0) || !(t0 > 0) || !template) {
  console.error("usage: OUTQ_BENCH_MESSAGE=JSON node produce.mjs --port P --rate R --count N --t0-us T");
  process.exit(2);
}
const connection = new IORedis({ host: "127.0.0.1", port: Number(opt.port), maxRetriesPerRequest: null });
const queue = new Queue(opt.queue, { connection });
const message = JSON.parse(template.replaceAll("%I%", "0"));
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let next = 0, worstLagUs = 0, lagSumUs = 0;
while (next < count) {
  const now = nowUs();
  const due = Math.min(count, Math.floor(((now - t0) * rate) / 1e6) + 1);
  if (due <= next) {
    await sleep(Math.max(0, (t0 + (next * 1e6) / rate - now) / 1000));
    continue;
  }
  const jobs = [];
  for (let i = next; i < due; i++) {
    const opts = { jobId: `lat-${i}` };
    if (delay > 0) opts.delay = Math.max(0, Math.round((t0 + (i * 1e6) / rate) / 1000 + delay - Date.now()));
    jobs.push({ name: "send", data: { message }, opts });
  }
  await queue.addBulk(jobs);
  const done = nowUs();
  for (let i = next; i < due; i++) {
    const lag = done - (t0 + (i * 1e6) / rate);
    lagSumUs += lag;
    if (lag > worstLagUs) worstLagUs = lag;
  }
  next = due;
}
console.log(JSON.stringify({ mean_lag_us: lagSumUs / count, worst_lag_us: worstLagUs }));
await queue.close();
connection.disconnect();
