"""Producer helpers for outq (docs/protocol.md, format 2): enqueue jobs, enqueue many in
one pipeline, and wait for an outcome without missing it.

The only dependency is the ``redis`` package (redis-py 4 or later)::

    import redis
    from outq_client import Client

    outq = Client(redis.Redis(), queue="default", max_backlog=100_000)
    outq.enqueue({"id": "order-42", "provider": "webhook", "account": "demo",
                  "message": {"text": "hello"}})
    outcome = outq.wait("order-42", timeout=30)   # {"status": "sent", ...}

Everything here is plain Redis commands on the keys of docs/protocol.md: ``XADD`` to
``outq:{Q}:jobs`` (never with ``MAXLEN``: trimming the jobs stream loses jobs), ``GET``
of ``outq:{Q}:result:<id>`` and ``XREAD`` of ``outq:{Q}:results``.

A queue split over a Redis Cluster (``queue_partitions`` in the worker's config; docs/
protocol.md, "Partitions") has those keys once per partition: give ``partitions=N``
(or ``partitions="auto"`` to read ``outq:{Q}:partitions``) and a ``redis.cluster.RedisCluster``.
A job with an id goes to the partition ``zlib.crc32(id) % N``; one without, to each in turn.
"""
import itertools
import json
import time
import zlib

__all__ = ["Client", "BacklogFull", "InvalidJob", "validate_job", "FINAL_STATUSES", "partition_of", "partition_tag",
           "key_slot"]

#: The statuses of a result value that are outcomes (``sending`` is not: a worker holds the job).
FINAL_STATUSES = ("sent", "dead", "cancelled")

_MAX_ID_BYTES = 200


class InvalidJob(ValueError):
    """The job would be a validation dead letter: the message names the field
    (``job.account: missing``). Nothing was written."""


class NotReplicated(Exception):
    """The jobs are written on the primary, but fewer replicas than asked acknowledged
    them within the timeout (WAIT): a crash of the primary now could lose them. They
    stay enqueued; enqueue them again (the same ids: a duplicate is skipped) once the
    replicas are back, if losing them is not acceptable."""

    def __init__(self, acknowledged, wanted, entries):
        super().__init__("%d of %d replica(s) acknowledged the jobs in time" % (acknowledged, wanted))
        self.acknowledged = acknowledged
        self.wanted = wanted
        self.entries = entries


class BacklogFull(Exception):
    """The jobs stream holds ``max_backlog`` entries or more (waiting and in flight) and
    did not drop below it within ``backlog_wait`` seconds. Nothing was written.

    Attributes: ``backlog`` (the last XLEN read), ``max_backlog``, ``adding`` (jobs of
    the refused call)."""

    def __init__(self, backlog, max_backlog, adding):
        self.backlog, self.max_backlog, self.adding = backlog, max_backlog, adding
        super().__init__("outq backlog full: the jobs stream holds %d entries and adding %d would pass "
                         "max_backlog=%d" % (backlog, adding, max_backlog))


def validate_job(job, where="job"):
    """Checks what the worker would refuse at once; raises InvalidJob naming the field.

    ``id`` (optional): a string of 1-200 bytes of UTF-8, no control character (C0, tab
    included, or DEL), no leading or trailing space. ``provider`` and ``account``:
    non-empty strings. ``message``: an object. ``v``: absent or 1. ``max_attempts``:
    absent or an integer 1-100. Other fields are the worker's business."""
    if not isinstance(job, dict):
        raise InvalidJob("%s: must be a dict (a JSON object), not %s" % (where, type(job).__name__))
    if "v" in job and (job["v"] != 1 or isinstance(job["v"], bool)):
        raise InvalidJob("%s.v: only 1 is accepted, not %r" % (where, job["v"]))
    if "id" in job:
        job_id = job["id"]
        if not isinstance(job_id, str):
            raise InvalidJob("%s.id: must be a string, not %s" % (where, type(job_id).__name__))
        _check_id(job_id, where + ".id")
    for field in ("provider", "account"):
        value = job.get(field)
        if value is None:
            raise InvalidJob("%s.%s: missing" % (where, field))
        if not isinstance(value, str) or not value:
            raise InvalidJob("%s.%s: must be a non-empty string, not %r" % (where, field, value))
    if "message" not in job:
        raise InvalidJob("%s.message: missing" % where)
    if not isinstance(job["message"], dict):
        raise InvalidJob("%s.message: must be a dict (a JSON object), not %s"
                         % (where, type(job["message"]).__name__))
    if "max_attempts" in job:
        n = job["max_attempts"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
            raise InvalidJob("%s.max_attempts: must be an integer 1-100, not %r" % (where, n))


def _check_id(job_id, where):
    try:
        size = len(job_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidJob("%s: not valid UTF-8 (a lone surrogate)" % where) from None
    if not 1 <= size <= _MAX_ID_BYTES:
        raise InvalidJob("%s: must be 1-%d bytes of UTF-8, not %d" % (where, _MAX_ID_BYTES, size))
    for i, ch in enumerate(job_id):
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise InvalidJob("%s: control character 0x%02X at %d (it is sent as a header value)"
                             % (where, ord(ch), i))
    if job_id[0] == " " or job_id[-1] == " ":
        raise InvalidJob("%s: leading or trailing space (it is sent as a header value)" % where)


def _body(job, where):
    """The job's JSON text, UTF-8 (InvalidJob for a lone surrogate anywhere in it)."""
    body = json.dumps(job, ensure_ascii=False, separators=(",", ":"))
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidJob("%s: a string is not valid UTF-8 (a lone surrogate at %d of its JSON)" % (where, e.start)) from None
    return body


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _crc16(data):
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """The cluster slot of a key: of its hash tag (between the first ``{`` and the next
    ``}``, when not empty), else of the whole key."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return _crc16(data) % 16384


def partition_of(job_id, count):
    """The partition of a job id: zlib's CRC-32 of its UTF-8 bytes, mod the count."""
    return zlib.crc32(job_id.encode()) % count if count > 1 else 0


def partition_tag(queue, index, count):
    """The hash tag of partition ``index`` of ``count`` (docs/protocol.md, "Partitions"):
    the queue's name for one partition; otherwise ``Q#i`` or the first of ``Q#i.1`` …
    ``Q#i.255`` whose slot is nearer the centre of the i-th of ``count`` equal slot ranges."""
    if count <= 1:
        return queue
    base = "%s#%d" % (queue, index)
    centre = (2 * index + 1) * 16384 // (2 * count)
    best, best_distance = base, abs(key_slot(base) - centre)
    for n in range(1, 256):
        if best_distance == 0:
            break
        candidate = "%s.%d" % (base, n)
        distance = abs(key_slot(candidate) - centre)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


class Client:
    """The producer's side of one queue.

    ``redis_client``: a ``redis.Redis`` (bytes or ``decode_responses=True``, both work).
    Its ``socket_timeout``, when set, must be longer than ``poll_s``.

    ``queue``: the queue name (``default``).

    ``max_backlog``: optional backlog cap. Before writing, the helper reads ``XLEN`` of
    the jobs stream (jobs waiting or in flight; delayed retries are not counted) and
    writes only when ``XLEN + jobs being added <= max_backlog``. Otherwise it waits up
    to ``backlog_wait`` seconds (0: not at all) for the workers to make room, then
    raises BacklogFull. The jobs stream is never trimmed. The check and the write are
    two commands: producers running side by side can pass the cap by their batch sizes
    (it slows producers down; it is not a hard limit).

    ``poll_s``: the longest single ``XREAD BLOCK`` of wait() and the backlog's polling
    period cap.

    ``replicas``: with a replicated Redis, after the XADDs ``WAIT replicas replica_timeout_ms``
    asks that many replicas to have the jobs before enqueue returns; fewer raises
    NotReplicated (the jobs are written, but a crash of the primary could lose them:
    Redis replication is asynchronous). 0 (default): no WAIT.
    """

    def __init__(self, redis_client, queue="default", max_backlog=None, backlog_wait=0.0, poll_s=1.0,
                 replicas=0, replica_timeout_ms=1000, partitions=1):
        if max_backlog is not None and (not isinstance(max_backlog, int) or max_backlog < 1):
            raise ValueError("max_backlog must be a positive integer or None, not %r" % (max_backlog,))
        if backlog_wait < 0:
            raise ValueError("backlog_wait must be >= 0 seconds")
        if not isinstance(replicas, int) or replicas < 0:
            raise ValueError("replicas must be an integer >= 0, not %r" % (replicas,))
        if not isinstance(replica_timeout_ms, int) or replica_timeout_ms < 1:
            raise ValueError("replica_timeout_ms must be a positive integer (ms): WAIT 0 would wait for ever")
        self.replicas = replicas
        self.replica_timeout_ms = replica_timeout_ms
        self.r = redis_client
        self.queue = queue
        self.max_backlog = max_backlog
        self.backlog_wait = backlog_wait
        self.poll_s = poll_s
        if partitions == "auto":
            recorded = redis_client.get("outq:{%s}:partitions" % queue)
            partitions = int(recorded) if recorded is not None else 1
        if not isinstance(partitions, int) or not 1 <= partitions <= 256:
            raise ValueError("partitions must be an integer 1-256 or 'auto', not %r" % (partitions,))
        if partitions > 1 and (max_backlog is not None or replicas):
            raise ValueError("max_backlog and replicas are for a queue of one partition")
        self.partitions = partitions
        self._tags = [partition_tag(queue, i, partitions) for i in range(partitions)]
        self._turn = itertools.cycle(range(partitions))
        self.jobs_key = "outq:{%s}:jobs" % self._tags[0]
        self.results_key = "outq:{%s}:results" % self._tags[0]

    def _tag_of(self, job_id):
        return self._tags[partition_of(job_id, self.partitions)]

    def jobs_key_for(self, job):
        """The jobs stream a job goes to: its id's partition, else the next in turn."""
        if self.partitions == 1:
            return self.jobs_key
        job_id = job.get("id")
        index = partition_of(job_id, self.partitions) if job_id else next(self._turn)
        return "outq:{%s}:jobs" % self._tags[index]

    def result_key(self, job_id):
        """``outq:{Q}:result:<job id>`` (in the id's partition)."""
        return "outq:{%s}:result:%s" % (self._tag_of(job_id), job_id)

    def results_key_for(self, job_id):
        return "outq:{%s}:results" % self._tag_of(job_id)

    # --- enqueue ---------------------------------------------------------------
    def backlog(self):
        """XLEN of the jobs stream: jobs waiting or in flight."""
        return int(self.r.xlen(self.jobs_key))

    def _make_room(self, adding):
        if self.max_backlog is None:
            return
        if adding > self.max_backlog:
            raise ValueError("%d jobs in one call can never fit max_backlog=%d: split them" % (adding, self.max_backlog))
        deadline = time.monotonic() + self.backlog_wait
        pause = 0.02
        while True:
            backlog = self.backlog()
            if backlog + adding <= self.max_backlog:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise BacklogFull(backlog, self.max_backlog, adding)
            time.sleep(min(pause, left))
            pause = min(pause * 2, self.poll_s)

    def enqueue(self, job):
        """Validates the job (see validate_job), checks the backlog cap, and adds it with one
        ``XADD outq:{Q}:jobs * job <json>``. Returns the stream entry id (str), which is the
        job id when the job has no ``id``. Raises InvalidJob or BacklogFull; nothing is
        written then."""
        validate_job(job)
        body = _body(job, "job")
        self._make_room(1)
        if not self.replicas:
            return _text(self.r.xadd(self.jobs_key_for(job), {"job": body}))
        return self._replicated(lambda pipe: pipe.xadd(self.jobs_key, {"job": body}))[0]

    def _replicated(self, add):
        """The XADDs of `add(pipe)` and a WAIT after them, on one connection (WAIT counts
        the writes of its own connection); raises NotReplicated when too few replicas have them."""
        pipe = self.r.pipeline(transaction=False)
        add(pipe)
        pipe.execute_command("WAIT", self.replicas, self.replica_timeout_ms)
        replies = pipe.execute()
        entries = [_text(e) for e in replies[:-1]]
        if int(replies[-1]) < self.replicas:
            raise NotReplicated(int(replies[-1]), self.replicas, entries)
        return entries

    def enqueue_many(self, jobs):
        """Validates every job first (InvalidJob names the first bad one, ``jobs[3].account:
        missing``, and nothing is written), checks the backlog cap for all of them at once,
        then adds them with one pipeline of XADDs (not a transaction). Returns their stream
        entry ids, in order."""
        jobs = list(jobs)
        for i, job in enumerate(jobs):
            validate_job(job, "jobs[%d]" % i)
        if not jobs:
            return []
        bodies = [(self.jobs_key_for(job), _body(job, "jobs[%d]" % i)) for i, job in enumerate(jobs)]
        self._make_room(len(jobs))

        def add(pipe):
            for key, body in bodies:
                pipe.xadd(key, {"job": body})

        if self.replicas:
            return self._replicated(add)
        pipe = self.r.pipeline(transaction=False)
        add(pipe)
        return [_text(entry) for entry in pipe.execute()]

    # --- outcomes ----------------------------------------------------------------
    def state(self, job_id):
        """The job's result value as a dict, whatever its status (``sending`` included);
        None when there is none (no worker took it yet, or its outcome expired)."""
        raw = self.r.get(self.result_key(job_id))
        return None if raw is None else json.loads(raw)

    def result(self, job_id):
        """The job's outcome (a dict whose ``status`` is ``sent``, ``dead`` or
        ``cancelled``), or None while it has none (not taken yet, or ``sending``)."""
        value = self.state(job_id)
        return value if value is not None and value.get("status") in FINAL_STATUSES else None

    def _last_event_id(self, results_key=None):
        last = self.r.xrevrange(results_key or self.results_key, "+", "-", count=1)
        return _text(last[0][0]) if last else "0-0"

    def _follow(self, last, deadline, results_key=None):
        """One XREAD BLOCK from `last` until the deadline (at most poll_s); returns
        (new last id, [job ids of the events read])."""
        block_ms = max(1, int(min(deadline - time.monotonic(), self.poll_s) * 1000))
        answer = self.r.xread({results_key or self.results_key: last}, count=1000, block=block_ms)
        ids = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                last = _text(entry_id)
                job_id = fields.get("id", fields.get(b"id"))
                if job_id is not None:
                    ids.append(_text(job_id))
        return last, ids

    def wait(self, job_id, timeout=30.0):
        """Waits for the job's outcome and returns it (see result()); raises TimeoutError
        after ``timeout`` seconds without one.

        The race-free pattern of docs/protocol.md: the results stream's last id is read
        first, then the result, then the stream is followed from that id (not ``$``), and
        the result is read again after each read of the stream, so an outcome written
        between the first read and the follow is never missed (and an event trimmed away
        does not matter: the result value is the record)."""
        deadline = time.monotonic() + timeout
        results_key = self.results_key_for(job_id)
        last = self._last_event_id(results_key)
        while True:
            outcome = self.result(job_id)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise TimeoutError("no outcome for job %r in queue %r after %gs" % (job_id, self.queue, timeout))
            last, _ = self._follow(last, deadline, results_key)

    def wait_many(self, job_ids, timeout=60.0):
        """Waits for the outcomes of every job id; returns {job id: outcome}. Raises
        TimeoutError (its ``outcomes`` attribute holds those that came, its ``missing``
        the ids without one) after ``timeout`` seconds.

        The same pattern as wait(): the last id first, then one MGET of every id, then
        the stream is followed; after each read the ids named by its events are read
        again, and every id still missing at least once per poll_s (events can be
        trimmed before they are read)."""
        deadline = time.monotonic() + timeout
        missing = list(dict.fromkeys(job_ids))
        outcomes = {}
        last = self._last_event_id() if self.partitions == 1 else None

        def check(ids):
            for start in range(0, len(ids), 1000):
                chunk = ids[start:start + 1000]
                if self.partitions == 1:
                    values = self.r.mget([self.result_key(i) for i in chunk])
                else:  # one GET each: a chunk spans the partitions' slots
                    pipe = self.r.pipeline(transaction=False)
                    for i in chunk:
                        pipe.get(self.result_key(i))
                    values = pipe.execute()
                for job_id, raw in zip(chunk, values):
                    if raw is not None:
                        value = json.loads(raw)
                        if value.get("status") in FINAL_STATUSES:
                            outcomes[job_id] = value
            missing[:] = [i for i in missing if i not in outcomes]

        check(missing)
        full_check_at = time.monotonic() + self.poll_s
        while missing:
            if time.monotonic() >= deadline:
                error = TimeoutError("%d of %d jobs without an outcome in queue %r after %gs, e.g. %r"
                                     % (len(missing), len(outcomes) + len(missing), self.queue, timeout, missing[:3]))
                error.outcomes, error.missing = outcomes, list(missing)
                raise error
            if last is None:
                # Many partitions: no one stream to follow; read again every poll_s.
                time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())))
                check(missing)
                continue
            last, named = self._follow(last, deadline)
            if not named or time.monotonic() >= full_check_at:
                check(missing)
                full_check_at = time.monotonic() + self.poll_s
            else:
                wanted = set(missing)
                check([i for i in dict.fromkeys(named) if i in wanted])
        return outcomes
