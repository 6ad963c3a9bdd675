// Producer helpers for outq (docs/protocol.md, format 2): enqueue jobs, enqueue many in
// one pipeline, and wait for an outcome without missing it. Uses the `redis` npm package
// (node-redis); plain Redis commands on the keys of docs/protocol.md only.
//
//   import { createClient } from "redis";
//   import { OutqClient } from "./outq.mjs";
//   const redis = await createClient({ url: "redis://127.0.0.1:6379" }).connect();
//   const outq = new OutqClient(redis, { queue: "default", maxBacklog: 100000 });
//   await outq.enqueue({ id: "order-42", provider: "webhook", account: "demo", message: { text: "hello" } });
//   const outcome = await outq.wait("order-42", { timeoutMs: 30000 });   // { status: "sent", ... }
//   await outq.close();   // the blocking connection wait() opened; `redis` stays yours
//
// The jobs stream is never trimmed (XADD … MAXLEN loses jobs): the backlog cap refuses or
// waits instead.

// --- partitions (docs/protocol.md, "Partitions") -------------------------------------------
// A queue split over a Redis Cluster (queue_partitions: P): a job with an id goes to the jobs
// stream of partitionTag(queue, partitionOf(id, P), P); one without an id to any partition. With
// node-redis' createCluster:
//   const tag = partitionTag("default", partitionOf(job.id, 6), 6);
//   await cluster.xAdd(`outq:{${tag}}:jobs`, "*", { job: JSON.stringify(job) });

const CRC32_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** zlib's CRC-32 of the UTF-8 bytes of `text`. */
export function crc32(text) {
  let c = 0xffffffff;
  for (const byte of Buffer.from(text, "utf8")) c = CRC32_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function crc16(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let k = 0; k < 8; k++) crc = (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key (of its hash tag when it has a non-empty one). */
export function keySlot(key) {
  let bytes = Buffer.from(key, "utf8");
  const start = bytes.indexOf("{");
  if (start >= 0) {
    const end = bytes.indexOf("}", start + 1);
    if (end > start + 1) bytes = bytes.subarray(start + 1, end);
  }
  return crc16(bytes) % 16384;
}

/** The partition of a job id: crc32(id) mod count. */
export function partitionOf(jobId, count) {
  return count > 1 ? crc32(jobId) % count : 0;
}

/** The hash tag of partition `index` of `count`: the queue's name for one; else Q#i or the
 *  first of Q#i.1 … Q#i.255 whose slot is nearer the centre of the i-th equal slot range. */
export function partitionTag(queue, index, count) {
  if (count <= 1) return queue;
  const base = `${queue}#${index}`;
  const centre = Math.floor(((2 * index + 1) * 16384) / (2 * count));
  let best = base;
  let bestDistance = Math.abs(keySlot(base) - centre);
  for (let n = 1; n < 256 && bestDistance > 0; n++) {
    const candidate = `${base}.${n}`;
    const distance = Math.abs(keySlot(candidate) - centre);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** The statuses of a result value that are outcomes (`sending` is not: a worker holds the job). */
export const FINAL_STATUSES = Object.freeze(["sent", "dead", "cancelled"]);

const MAX_ID_BYTES = 200;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The job would be a validation dead letter; `message` names the field. Nothing was written. */
export class InvalidJobError extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidJobError";
  }
}

/** The jobs stream is at its cap and did not make room within `backlogWaitMs`. Nothing was written. */
export class BacklogFullError extends Error {
  constructor(backlog, maxBacklog, adding) {
    super(`outq backlog full: the jobs stream holds ${backlog} entries and adding ${adding} would pass maxBacklog=${maxBacklog}`);
    this.name = "BacklogFullError";
    Object.assign(this, { backlog, maxBacklog, adding });
  }
}

/** No outcome within the timeout. `outcomes` and `missing` are set by waitMany(). */
export class NotReplicatedError extends Error {
  constructor(acknowledged, wanted, entries) {
    super(`${acknowledged} of ${wanted} replica(s) acknowledged the jobs in time: they are written on the primary, which could lose them if it crashed now`);
    this.name = "NotReplicatedError";
    Object.assign(this, { acknowledged, wanted, entries });
  }
}

export class WaitTimeoutError extends Error {
  constructor(message, outcomes = {}, missing = []) {
    super(message);
    this.name = "WaitTimeoutError";
    Object.assign(this, { outcomes, missing });
  }
}

function kind(v) {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/**
 * Checks what the worker would refuse at once; throws InvalidJobError naming the field.
 * `id` (optional): a string of 1-200 bytes of UTF-8, no control character (C0, tab
 * included, or DEL), no leading or trailing space, no lone surrogate. `provider`,
 * `account`: non-empty strings. `message`: an object. `v`: absent or 1. `max_attempts`:
 * absent or an integer 1-100.
 */
export function validateJob(job, where = "job") {
  if (kind(job) !== "object") throw new InvalidJobError(`${where}: must be an object, not ${kind(job)}`);
  if ("v" in job && job.v !== 1) throw new InvalidJobError(`${where}.v: only 1 is accepted, not ${JSON.stringify(job.v)}`);
  if ("id" in job) {
    const id = job.id;
    if (typeof id !== "string") throw new InvalidJobError(`${where}.id: must be a string, not ${kind(id)}`);
    if (LONE_SURROGATE.test(id)) throw new InvalidJobError(`${where}.id: not valid UTF-8 (a lone surrogate)`);
    const size = Buffer.byteLength(id, "utf8");
    if (size < 1 || size > MAX_ID_BYTES) throw new InvalidJobError(`${where}.id: must be 1-${MAX_ID_BYTES} bytes of UTF-8, not ${size}`);
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      if (c < 0x20 || c === 0x7f) {
        const hex = c.toString(16).toUpperCase().padStart(2, "0");
        throw new InvalidJobError(`${where}.id: control character 0x${hex} at ${i} (it is sent as a header value)`);
      }
    }
    if (id.startsWith(" ") || id.endsWith(" ")) throw new InvalidJobError(`${where}.id: leading or trailing space (it is sent as a header value)`);
  }
  for (const field of ["provider", "account"]) {
    const value = job[field];
    if (value === undefined || value === null) throw new InvalidJobError(`${where}.${field}: missing`);
    if (typeof value !== "string" || value === "") throw new InvalidJobError(`${where}.${field}: must be a non-empty string, not ${JSON.stringify(value)}`);
  }
  if (!("message" in job) || job.message === undefined) throw new InvalidJobError(`${where}.message: missing`);
  if (kind(job.message) !== "object") throw new InvalidJobError(`${where}.message: must be an object, not ${kind(job.message)}`);
  if ("max_attempts" in job) {
    const n = job.max_attempts;
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new InvalidJobError(`${where}.max_attempts: must be an integer 1-100, not ${JSON.stringify(n)}`);
  }
}

// XREAD's answer: an array of [stream, entries] (RESP2), or a map of stream -> entries (RESP3).
function streamsOf(answer) {
  if (answer === null || answer === undefined) return [];
  if (Array.isArray(answer)) return answer;
  if (answer instanceof Map) return [...answer.entries()];
  return Object.entries(answer);
}

// An entry's fields: a flat array [name, value, ...] (RESP2), or a map / object (RESP3).
function fieldOf(fields, name) {
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) if (String(fields[i]) === name) return String(fields[i + 1]);
    return undefined;
  }
  if (fields instanceof Map) return fields.has(name) ? String(fields.get(name)) : undefined;
  return fields && name in fields ? String(fields[name]) : undefined;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The producer's side of one queue.
 *
 * new OutqClient(redis, { queue = "default", maxBacklog, backlogWaitMs = 0, pollMs = 1000 })
 *
 * `redis`: a connected node-redis client (createClient().connect()). wait() blocks on
 * its own connection (`redis.duplicate()`, opened on first use, closed by close()), so
 * `redis` stays free for other commands.
 *
 * `maxBacklog`: optional backlog cap. Before writing, XLEN of the jobs stream (jobs
 * waiting or in flight) is read, and the jobs are written only when XLEN + their count
 * <= maxBacklog; otherwise the helper waits up to `backlogWaitMs` (0: not at all) for
 * room, then throws BacklogFullError. The stream is never trimmed. Check and write are
 * two commands: producers side by side can pass the cap by their batch sizes.
 *
 * `pollMs`: the longest single XREAD BLOCK of wait(), and the backlog polling cap.
 *
 * `replicas`: with a replicated Redis, `WAIT replicas replicaTimeoutMs` after the XADDs,
 * in the same pipeline (WAIT counts its own connection's writes); fewer replicas rejects
 * with NotReplicatedError (the jobs are written, but a crash of the primary could lose
 * them). 0 (default): no WAIT.
 */
export class OutqClient {
  constructor(redis, { queue = "default", maxBacklog = undefined, backlogWaitMs = 0, pollMs = 1000, replicas = 0,
                       replicaTimeoutMs = 1000 } = {}) {
    if (!(Number.isInteger(replicas) && replicas >= 0)) throw new RangeError(`replicas must be an integer >= 0, not ${replicas}`);
    if (!(Number.isInteger(replicaTimeoutMs) && replicaTimeoutMs >= 1)) {
      throw new RangeError("replicaTimeoutMs must be a positive integer (ms): WAIT 0 would wait for ever");
    }
    this.replicas = replicas;
    this.replicaTimeoutMs = replicaTimeoutMs;
    if (maxBacklog !== undefined && maxBacklog !== null && !(Number.isInteger(maxBacklog) && maxBacklog >= 1)) {
      throw new RangeError(`maxBacklog must be a positive integer, not ${maxBacklog}`);
    }
    if (!(backlogWaitMs >= 0)) throw new RangeError("backlogWaitMs must be >= 0");
    this.redis = redis;
    this.queue = queue;
    this.maxBacklog = maxBacklog ?? undefined;
    this.backlogWaitMs = backlogWaitMs;
    this.pollMs = pollMs;
    this.jobsKey = `outq:{${queue}}:jobs`;
    this.resultsKey = `outq:{${queue}}:results`;
    this._blocking = null;
  }

  /** `outq:{Q}:result:<job id>` */
  resultKey(jobId) {
    return `outq:{${this.queue}}:result:${jobId}`;
  }

  /** XLEN of the jobs stream: jobs waiting or in flight. */
  async backlog() {
    return Number(await this.redis.sendCommand(["XLEN", this.jobsKey]));
  }

  async _makeRoom(adding) {
    if (this.maxBacklog === undefined) return;
    if (adding > this.maxBacklog) throw new RangeError(`${adding} jobs in one call can never fit maxBacklog=${this.maxBacklog}: split them`);
    const deadline = Date.now() + this.backlogWaitMs;
    let pause = 20;
    for (;;) {
      const backlog = await this.backlog();
      if (backlog + adding <= this.maxBacklog) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new BacklogFullError(backlog, this.maxBacklog, adding);
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, this.pollMs);
    }
  }

  /**
   * Validates the job, checks the backlog cap and adds it with one
   * `XADD outq:{Q}:jobs * job <json>`. Resolves to the stream entry id (the job id when
   * the job has no `id`). Rejects with InvalidJobError or BacklogFullError, nothing written.
   */
  async enqueue(job) {
    validateJob(job);
    const body = JSON.stringify(job);
    await this._makeRoom(1);
    if (this.replicas) return (await this._addAll([body]))[0];
    return String(await this.redis.sendCommand(["XADD", this.jobsKey, "*", "job", body]));
  }

  /** The XADDs of `bodies` in one pipeline, with WAIT after them when `replicas` is set. */
  async _addAll(bodies) {
    const pipeline = this.redis.multi();
    for (const body of bodies) pipeline.addCommand(["XADD", this.jobsKey, "*", "job", body]);
    if (this.replicas) pipeline.addCommand(["WAIT", String(this.replicas), String(this.replicaTimeoutMs)]);
    const replies = await pipeline.execAsPipeline();
    for (const r of replies) if (r instanceof Error) throw r;
    const entries = replies.slice(0, bodies.length).map(String);
    if (this.replicas && Number(replies[bodies.length]) < this.replicas) {
      throw new NotReplicatedError(Number(replies[bodies.length]), this.replicas, entries);
    }
    return entries;
  }

  /**
   * Validates every job first (the error names the first bad one: `jobs[3].account:
   * missing`; nothing is written), checks the cap for all of them, then adds them in one
   * pipeline of XADDs (not a transaction). Resolves to their entry ids, in order.
   */
  async enqueueMany(jobs) {
    jobs = Array.from(jobs);
    jobs.forEach((job, i) => validateJob(job, `jobs[${i}]`));
    if (jobs.length === 0) return [];
    const bodies = jobs.map((job) => JSON.stringify(job));
    await this._makeRoom(jobs.length);
    return this._addAll(bodies);
  }

  /** The job's result value (any status, `sending` included), or null when there is none. */
  async state(jobId) {
    const raw = await this.redis.sendCommand(["GET", this.resultKey(jobId)]);
    return raw === null || raw === undefined ? null : JSON.parse(String(raw));
  }

  /** The job's outcome (`status` sent, dead or cancelled), or null while it has none. */
  async result(jobId) {
    const value = await this.state(jobId);
    return value !== null && FINAL_STATUSES.includes(value.status) ? value : null;
  }

  async _lastEventId() {
    const last = await this.redis.sendCommand(["XREVRANGE", this.resultsKey, "+", "-", "COUNT", "1"]);
    return last && last.length ? String(last[0][0]) : "0-0";
  }

  async _blocker() {
    if (!this._blocking) this._blocking = this.redis.duplicate().connect();
    return this._blocking;
  }

  /** One XREAD BLOCK from `last`, at most pollMs and not past the deadline: [last, job ids]. */
  async _follow(last, deadline) {
    const blockMs = Math.max(1, Math.min(deadline - Date.now(), this.pollMs));
    const blocker = await this._blocker();
    const answer = await blocker.sendCommand(["XREAD", "COUNT", "1000", "BLOCK", String(Math.floor(blockMs)),
                                              "STREAMS", this.resultsKey, last]);
    const ids = [];
    for (const [, entries] of streamsOf(answer)) {
      for (const [entryId, fields] of entries) {
        last = String(entryId);
        const id = fieldOf(fields, "id");
        if (id !== undefined) ids.push(id);
      }
    }
    return [last, ids];
  }

  /**
   * Waits for the job's outcome and resolves to it; rejects with WaitTimeoutError after
   * `timeoutMs`. The race-free pattern of docs/protocol.md: the results stream's last id
   * first, then the result, then the stream followed from that id (not `$`), and the
   * result read again after each read of the stream.
   */
  async wait(jobId, { timeoutMs = 30000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last = await this._lastEventId();
    for (;;) {
      const outcome = await this.result(jobId);
      if (outcome) return outcome;
      if (Date.now() >= deadline) throw new WaitTimeoutError(`no outcome for job ${JSON.stringify(jobId)} in queue ${this.queue} after ${timeoutMs} ms`);
      [last] = await this._follow(last, deadline);
    }
  }

  /**
   * Waits for every job id; resolves to { id: outcome }. Rejects with WaitTimeoutError
   * (with `outcomes` and `missing`) after `timeoutMs`. As wait(), with one MGET of the
   * ids still missing after a read that named none of them or at least once per pollMs
   * (events can be trimmed before they are read), and of the ids its events named otherwise.
   */
  async waitMany(jobIds, { timeoutMs = 60000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let missing = [...new Set(jobIds)];
    const outcomes = {};
    let last = await this._lastEventId();
    const check = async (ids) => {
      for (let start = 0; start < ids.length; start += 1000) {
        const chunk = ids.slice(start, start + 1000);
        const raws = await this.redis.sendCommand(["MGET", ...chunk.map((id) => this.resultKey(id))]);
        chunk.forEach((id, i) => {
          if (raws[i] === null || raws[i] === undefined) return;
          const value = JSON.parse(String(raws[i]));
          if (FINAL_STATUSES.includes(value.status)) outcomes[id] = value;
        });
      }
      missing = missing.filter((id) => !(id in outcomes));
    };
    await check(missing);
    let fullCheckAt = Date.now() + this.pollMs;
    while (missing.length) {
      if (Date.now() >= deadline) {
        throw new WaitTimeoutError(`${missing.length} of ${missing.length + Object.keys(outcomes).length} jobs without an outcome in queue ${this.queue} after ${timeoutMs} ms, e.g. ${JSON.stringify(missing.slice(0, 3))}`,
                                   outcomes, missing);
      }
      let named;
      [last, named] = await this._follow(last, deadline);
      if (!named.length || Date.now() >= fullCheckAt) {
        await check(missing);
        fullCheckAt = Date.now() + this.pollMs;
      } else {
        const wanted = new Set(missing);
        await check([...new Set(named)].filter((id) => wanted.has(id)));
      }
    }
    return outcomes;
  }

  /** Closes the blocking connection wait() opened (the client given stays open). */
  async close() {
    if (this._blocking) {
      const blocking = await this._blocking;
      this._blocking = null;
      if (typeof blocking.close === "function") await blocking.close();
      else await blocking.quit();
    }
  }
}
