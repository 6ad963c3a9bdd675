// Pre-enqueues N BullMQ jobs carrying the same message the outq run sends.
// usage: node enqueue.mjs REDIS_PORT N
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [port, n] = [Number(process.argv[2]), Number(process.argv[3])];
// BullMQ in native ESM takes a constructed client.
const connection = new IORedis({ host: "127.0.0.1", port, maxRetriesPerRequest: null });
const queue = new Queue("bench", { connection });
const message = (i) => ({
  ClientToken: "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
  AccessToken: "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
  Client: "Sample Client 1.0.0",
  Messages: [{ Text: `Text of the message ${i}`, MessageThreadId: "8d02142f-31cf-4115-90bf-ae5200c7a1ba",
               Identifier: `b${i}` }],
});
for (let start = 0; start < n; start += 1000) {
  const jobs = [];
  for (let i = start; i < Math.min(n, start + 1000); i++) jobs.push({ name: "send", data: { message: message(i) } });
  await queue.addBulk(jobs);
}
await queue.close();
await connection.quit();
