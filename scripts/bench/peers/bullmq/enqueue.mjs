// Adds N jobs to the BullMQ queue before its worker starts (Queue.addBulk in
// chunks). Every job carries the message the outq run sends: the template
// from OUTQ_BENCH_MESSAGE with each "%I%" replaced by the job's index.
//   node enqueue.mjs --port P --n N [--queue bench]
import { parseArgs } from "node:util";
import { Queue } from "bullmq";
import IORedis from "ioredis";

const { values: opt } = parseArgs({
  options: { port: { type: "string" }, n: { type: "string" }, queue: { type: "string", default: "bench" } },
});
const n = Number(opt.n);
const template = process.env.OUTQ_BENCH_MESSAGE;
if (!opt.port || !(n > 0) || !template) {
  console.error("usage: OUTQ_BENCH_MESSAGE=JSON node enqueue.mjs --port P --n N [--queue Q]");
  process.exit(2);
}

const connection = new IORedis({ host: "127.0.0.1", port: Number(opt.port), maxRetriesPerRequest: null });
const queue = new Queue(opt.queue, { connection });
const chunk = 2000;
for (let first = 0; first < n; first += chunk) {
  const jobs = [];
  for (let i = first; i < Math.min(n, first + chunk); i++) {
    jobs.push({ name: "send", data: { message: JSON.parse(template.replaceAll("%I%", String(i))) } });
  }
  await queue.addBulk(jobs);
}
await queue.close();
connection.disconnect();
