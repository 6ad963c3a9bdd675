"""The operator's surface through the real binary: option parsing, --json output,
what a config needs, warnings and refusals (issue 15)."""
import json
import time
import os
import subprocess

from harness import OUTQ, Env, job


def _environment(extra=None):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OUTQ_REDIS_URL", "OUTQ_CONFIG") and not k.startswith("OUTQ_IT_")}
    environment.update(extra or {})
    return environment


def _outq(*args, input=None, extra_env=None):
    """Runs `outq <args>` as given (no --redis/--queue added); stdout and stderr as bytes."""
    return subprocess.run([OUTQ] + list(args), capture_output=True, timeout=60, env=_environment(extra_env),
                          input=input.encode() if isinstance(input, str) else input)


def _write_config(env, config, name="outq.json"):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def test_operator_commands_resolve_only_the_redis_secrets_of_a_config():
    with Env() as env:
        env.r.execute_command("ACL", "SETUSER", "ops", "reset", "on", ">ops-pw", "~*", "&*", "+@all")
        config = env.config()
        config["redis"]["url"] = "redis://ops:@127.0.0.1:%d/0" % env.redis.port  # the password comes from redis.password
        config["redis"]["password"] = {"env": "OUTQ_IT_REDIS_PASSWORD"}
        config["providers"]["webhook"]["accounts"]["a"]["headers"] = {"Authorization": {"env": "OUTQ_IT_UNSET"}}
        path = _write_config(env, config)
        password = {"OUTQ_IT_REDIS_PASSWORD": "ops-pw"}
        for command in (["stats"], ["stats", "--json"], ["dead", "list"], ["pause", "webhook", "a", "--for", "1m"],
                        ["resume", "webhook", "a"]):
            out = _outq(*command, "--config", path, extra_env=password)
            assert out.returncode == 0 and b"OUTQ_IT_UNSET" not in out.stderr, (command, out.returncode, out.stderr)
        out = _outq("enqueue", "-", "--config", path, input=json.dumps(job("secretless")), extra_env=password)
        assert out.returncode == 0, out.stderr
        assert env.r.xlen(env.key("jobs")) == 1
        out = _outq("result", "nope", "--config", path, extra_env=password)
        assert out.returncode == 1 and b"no result" in out.stderr, out.stderr
        # redis.password is resolved for them: wrong, it is refused by Redis; unset, it is named.
        out = _outq("stats", "--config", path, extra_env={"OUTQ_IT_REDIS_PASSWORD": "wrong"})
        assert out.returncode == 1 and b"WRONGPASS" in out.stderr, (out.returncode, out.stderr)
        out = _outq("stats", "--config", path)
        assert out.returncode == 2, (out.returncode, out.stderr)
        assert b"redis.password: environment variable OUTQ_IT_REDIS_PASSWORD is not set" in out.stderr, out.stderr
        # `outq run` needs every secret.
        out = _outq("run", "--config", path, extra_env=password)
        assert out.returncode == 2 and b"environment variable OUTQ_IT_UNSET is not set" in out.stderr, out.stderr


def test_misspelt_options_are_refused_naming_the_closest_match_and_nothing_is_done():
    with Env() as env:
        env.enqueue([job("gone", sandbox={"status": 400})])
        env.worker()
        assert env.wait_results(["gone"])["gone"]["status"] == "dead"
        stream_before = env.r.xinfo_stream(env.key("jobs"))["last-generated-id"]
        for args, message in (
                (["dead", "replay", "--provider", "webhook", "--dryrun", "--all"],
                 "unknown option --dryrun; did you mean --dry-run?"),
                (["dead", "replay", "--acount", "other", "--dry-run"], "unknown option --acount; did you mean --account?"),
                (["dead", "list", "--clas", "permanent"], "unknown option --clas; did you mean --class?"),
                (["dead", "list", "--limt", "3"], "unknown option --limt; did you mean --limit?"),
                (["dead", "replay", "--dryrun", "--class", "expired"], "unknown option --dryrun; did you mean --dry-run?"),
                (["dead", "replay", "--dry-run", "--class", "--all"], "--class needs a value"),
                (["dead", "replay", "--all", "--dry-run=yes"], "--dry-run is a flag and takes no value"),
                (["dead", "list", "--limit", "ten"], "--limit: expected a whole number"),
                (["dead", "list", "--since", "yesterday"], "--since: expected an RFC 3339 time"),
                (["pause", "webhook", "a", "--for", "soon"], "--for: expected a duration"),
                (["pause", "webhook", "a", "--reason"], "--reason needs a value"),
                (["stats", "--json", "extra"], "stats takes no arguments"),
                (["stat"], "unknown command 'stat'; did you mean 'stats'?")):
            out = env.cli(*args, check=False)
            assert out.returncode == 2 and message in out.stderr and out.stdout == "", \
                (args, out.returncode, out.stdout, out.stderr)
            assert "--help" in out.stderr, out.stderr  # where to read more
        assert env.r.xinfo_stream(env.key("jobs"))["last-generated-id"] == stream_before, "nothing replayed"
        assert not env.r.exists(env.key("replayed"))
        assert not env.r.keys("outq:{t@*}:pause"), "nothing paused"
        assert len(env.hook_requests()) == 1

        out = _outq("--version")
        assert out.returncode == 0 and out.stdout.startswith(b"outq "), out
        for args in (["-h"], ["--help"], ["help"]):
            out = _outq(*args)
            assert out.returncode == 0 and b"dead replay [ID]" in out.stdout and b"--config FILE" in out.stdout, out
        for args, expected in ((["dead", "replay", "--help"], b"--dry-run"), (["dead", "replay", "-h"], b"--dry-run"),
                               (["help", "dead", "replay"], b"--dry-run"), (["stats", "-h"], b"usage: outq stats"),
                               (["pause", "--help"], b"(default: paused by an operator)"),
                               (["dead", "list", "--help"], b"(default: 100)"), (["dead", "--help"], b"dead show ID")):
            out = _outq(*args)
            assert out.returncode == 0 and expected in out.stdout, (args, out)
            if args[0] != "dead" or len(args) > 2:
                assert b"examples:\n  outq " in out.stdout, (args, out.stdout)

        # The global options are accepted by every command.
        path = _write_config(env, env.config())
        for args in (["stats"], ["dead", "list"], ["result", "gone"], ["dead", "show", "gone"],
                     ["dead", "replay", "gone", "--dry-run"], ["version"]):
            out = _outq(*args, "--json", "--config", path, "--redis", env.redis.url, "--queue", env.queue)
            assert out.returncode == 0, (args, out)
            json.loads(out.stdout)


def _json_of(out, what):
    """The stdout of a --json command as JSON, read as strict UTF-8 like any JSON parser does."""
    assert out.returncode == 0, (what, out.returncode, out.stdout, out.stderr)
    try:
        return json.loads(out.stdout.decode("utf-8"))
    except ValueError as e:
        raise AssertionError("%s --json printed no valid JSON (%s): %r" % (what, e, out.stdout[:300]))


def test_every_command_prints_valid_json_even_for_invalid_utf8_and_control_characters():
    """--json output is always valid JSON; ill-formed UTF-8 is shown as U+FFFD (one per
    maximal subpart), control characters are JSON escapes."""
    with Env() as env:
        raw = b"bad \xff\xfe bytes, nul \x00, escape \x1b[31m, newline \n, cut \xe2\x82"
        shown = "bad \ufffd\ufffd bytes, nul \x00, escape \x1b[31m, newline \n, cut \ufffd"
        # A result value with bytes no worker writes (it keeps results UTF-8): shown as U+FFFD.
        env.r.set(env.key("result:bin-1"), b'{"status":"sent","id":"bin-1","attempts":1,"provider_message_id":"'
                  + raw.replace(b"\x00", b"\\u0000").replace(b"\x1b", b"\\u001b").replace(b"\n", b"\\n")
                  + b'","completed_at":1700000000000,"meta":{"note":"\xff"}}')
        bad_job = b'{"v":1,"id":"bin-2","provider":"webhook","account":"a","message":{"text":"\xff\x1b"}}'
        env.r.xadd(env.key("dead"), {"id": "bin-2", "provider": "webhook", "account": "a",
                                     "error_class": "permanent", "error": raw, "http_status": "400",
                                     "job": bad_job, "failed_at": "1700000000000"})
        env.r.set("outq:{t@web\xffhook/a}:pause".encode("latin-1"), raw)  # a scope and reason of any bytes

        def outq(*args, input=None):
            return _outq(*args, "--json", "--redis", env.redis.url, "--queue", env.queue, input=input)

        result = _json_of(outq("result", "bin-1"), "result")
        assert result["provider_message_id"] == shown and result["meta"] == {"note": "\ufffd"}, result
        assert result["attempts"] == 1
        [listed] = _json_of(outq("dead", "list"), "dead list")
        assert listed["error"] == shown and listed["id"] == "bin-2" and listed["http_status"] == 400, listed
        assert "\ufffd" in listed["job"], listed
        assert _json_of(outq("dead", "show", "bin-2"), "dead show")["error"] == shown
        stats = _json_of(outq("stats"), "stats")
        assert [(p["scope"], p["reason"]) for p in stats["pauses"]] == [("web\ufffdhook/a", shown)], stats
        dry = _json_of(outq("dead", "replay", "bin-2", "--dry-run"), "dead replay --dry-run")
        assert dry["dry_run"] is True and [r["id"] for r in dry["replayed"]] == ["bin-2"], dry
        replayed = _json_of(outq("dead", "replay", "bin-2"), "dead replay")
        assert replayed["dry_run"] is False and replayed["replayed"][0]["job_entry"], replayed
        # (a command line cannot hold a NUL)
        paused = _json_of(outq("pause", "webhook", "a", "--for", "1h30m", "--reason", b"why \xff\x1b[31m\n"), "pause")
        assert paused == {"paused": True, "provider": "webhook", "account": "a", "for_ms": 5400000,
                          "reason": "why \ufffd\x1b[31m\n"}, paused
        assert 5300000 < env.r.pttl("outq:{t@webhook/a}:pause") <= 5400000
        resumed = _json_of(outq("resume", "webhook", "a"), "resume")
        assert resumed == {"provider": "webhook", "account": "a", "was_paused": True, "held_jobs_due_now": 0}, resumed
        enqueued = _json_of(outq("enqueue", "-", input=json.dumps(job("bin-3"))), "enqueue")
        assert enqueued["enqueued"] == 1 and len(enqueued["entries"]) == 1, enqueued
        assert _json_of(outq("version"), "version") == {"version": _outq("--version").stdout.decode().split()[1]}
        assert "version" in _json_of(outq("--version"), "--version")


def test_pause_and_resume_refuse_a_provider_or_account_that_is_not_configured_unless_forced():
    with Env() as env:
        path = _write_config(env, env.config())  # webhook, accounts a and b

        def outq(*args):
            return env.cli(*args, "--config", path, check=False)

        for args, message in (
                (["pause", "webhook", "nope"], "provider 'webhook' has no account 'nope' in the config (configured: a, b)"),
                (["pause", "webhook", "aa", "--for", "10m"], "has no account 'aa' in the config (configured: a, b); "
                                                             "did you mean 'a'?"),
                (["pause", "mews", "a"], "provider 'mews' is not configured (configured: webhook)"),
                (["resume", "webhook", "nope"], "provider 'webhook' has no account 'nope'")):
            out = outq(*args)
            assert out.returncode == 2 and message in out.stderr and "--force" in out.stderr, \
                (args, out.returncode, out.stderr)
        # Without a config only the provider can be checked: one outq does not know is an error.
        out = env.cli("pause", "webhok", "a", check=False)
        assert out.returncode == 2 and "unknown provider 'webhok'" in out.stderr, out.stderr
        assert "did you mean 'webhook'?" in out.stderr, out.stderr
        assert not env.r.keys("outq:{t@*"), "nothing paused"
        # --force: a warning, and done.
        out = outq("pause", "webhook", "nope", "--force", "--for", "1h30m")
        assert out.returncode == 0 and "warning: provider 'webhook' has no account 'nope'" in out.stderr, out.stderr
        assert 5300000 < env.r.pttl("outq:{t@webhook/nope}:pause") <= 5400000
        out = outq("resume", "webhook", "nope", "--force")
        assert out.returncode == 0 and "warning:" in out.stderr and "resumed webhook/nope" in out.stdout, out
        out = env.cli("pause", "webhook", "anything")  # no config: any account of a known provider
        assert "warning" not in out.stderr, out.stderr
        out = outq("pause", "webhook", "a", "--for", "90s")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        assert 80000 < env.r.pttl("outq:{t@webhook/a}:pause") <= 90000


def test_stats_and_enqueue_warn_on_stderr_when_the_queue_has_no_consumer_group():
    with Env() as env:
        warning = "queue 't' has no consumer group"
        out = env.cli("stats", "--json")
        assert warning in out.stderr and json.loads(out.stdout)["consumers"] == 0, out
        out = env.cli("stats")
        assert warning in out.stderr, out.stderr
        out = env.cli("enqueue", "-", input=json.dumps(job("early")))
        assert warning in out.stderr and "enqueued 1 job" in out.stdout, out
        out = env.cli("enqueue", "-", "--json", input=json.dumps(job("early-2")))
        assert warning in out.stderr and json.loads(out.stdout)["enqueued"] == 1, out
        env.worker()
        env.wait_results(["early", "early-2"])
        for args in (["stats"], ["stats", "--json"]):
            out = env.cli(*args)
            assert out.stderr == "", (args, out.stderr)
        out = env.cli("enqueue", "-", input=json.dumps(job("later")))
        assert out.stderr == "", out.stderr


def test_enqueue_reports_every_invalid_job_by_its_line_and_writes_nothing():
    with Env() as env:
        path = _write_config(env, env.config())
        lines = [json.dumps(job("ok-1")),  # line 1
                 "",
                 "{not json",  # 3
                 json.dumps({"v": 1, "id": "no-account", "provider": "webhook", "message": {}}),  # 4
                 json.dumps(job("ok-2")),
                 json.dumps(job("elsewhere", account="zz"))]  # 6: not in the config
        text = "\n".join(lines) + "\n"
        out = env.cli("enqueue", "-", "--config", path, input=text, check=False)
        assert out.returncode == 1, (out.returncode, out.stderr)
        reported = [line for line in out.stderr.splitlines() if line.startswith("outq: line ")]
        assert [line.split(":")[1] for line in reported] == [" line 3", " line 4", " line 6"], out.stderr
        assert "invalid JSON" in reported[0] and "job.account: missing" in reported[1], reported
        assert "no account 'zz' for provider 'webhook'" in reported[2], reported
        assert "3 of 5 jobs invalid; nothing enqueued" in out.stderr, out.stderr
        out = env.cli("enqueue", "-", "--config", path, "--json", input=text, check=False)
        assert out.returncode == 1
        shown = json.loads(out.stdout)
        assert shown["enqueued"] == 0 and [i["line"] for i in shown["invalid"]] == [3, 4, 6], shown
        # An array: each element by the line of the input where it starts.
        array = "[\n  %s,\n  %s,\n\n  %s\n]\n" % (json.dumps(job("a1")), json.dumps({"v": 1, "id": "a2"}),
                                                  json.dumps(job("a3", account="zz")))
        out = env.cli("enqueue", "-", "--config", path, input=array, check=False)
        reported = [line for line in out.stderr.splitlines() if line.startswith("outq: line ")]
        assert out.returncode == 1 and [line.split(":")[1] for line in reported] == [" line 3", " line 5"], out.stderr
        assert not env.r.exists(env.key("jobs")), "nothing enqueued when any job is invalid"
        out = env.cli("enqueue", "-", "--config", path, input=lines[0] + "\n\n" + lines[4] + "\n")
        assert "enqueued 2 job(s)" in out.stdout, out.stdout
        assert env.r.xlen(env.key("jobs")) == 2


def test_enqueue_says_which_jobs_already_have_a_result():
    """outq enqueue warns about a copy of a job that already has a result (the workers
    will skip it as a duplicate) and lists it under "duplicates" with --json."""
    with Env() as env:
        env.worker()
        env.enqueue([job("dup-1")])
        env.wait_results(["dup-1"])
        out = env.cli("enqueue", "--json", input=json.dumps(job("dup-1")) + "\n" + json.dumps(job("new-1")) + "\n")
        report = json.loads(out.stdout)
        assert report["enqueued"] == 2 and report["duplicates"] == [{"id": "dup-1", "status": "sent"}], report
        assert "job dup-1 already has a result (sent)" in out.stderr, out.stderr
        env.wait_results(["new-1"])
        assert sorted(r["headers"]["idempotency-key"] for r in env.hook_requests()) == ["dup-1", "new-1"]


def test_result_wait_returns_the_outcome_when_it_comes_and_times_out_otherwise():
    """outq result ID --wait blocks until the job's outcome is written (the job is
    enqueued while it waits, the worker starts later) and prints it; without an outcome
    it gives up after --timeout with exit 1."""
    import subprocess
    with Env() as env:
        waiter = subprocess.Popen([OUTQ, "result", "late-1", "--wait", "--timeout", "20s", "--json", "--redis",
                                   env.redis.url, "--queue", env.queue], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # the waiter is reading; the job does not exist yet
            assert waiter.poll() is None, waiter.communicate()
            env.enqueue([job("late-1", sandbox={"delay_ms": 300})])
            env.worker()
            out, err = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
        assert waiter.returncode == 0, (out, err)
        assert json.loads(out)["status"] == "sent", out
        t0 = time.monotonic()
        out = env.cli("result", "never", "--wait", "--timeout", "2s", check=False)
        assert out.returncode == 1 and "no outcome for job never within 2 s" in out.stderr, out.stderr
        assert 1.8 < time.monotonic() - t0 < 10


def test_stats_shows_an_open_and_a_half_open_circuit():
    """The circuit script (as the worker sends it, on Redis' clock) opens account a's circuit;
    `outq stats` shows it with its pause, and once its opening is over, as half-open."""
    from test_circuit_script import FAILURE
    with Env() as env:
        scope = "outq:{t@webhook/a}:"
        keys = (scope + "circuit", scope + "pause", scope + "circuit:probe")
        for _ in range(3):
            env.r.eval(FAILURE, 3, *keys, 3, 60000, 300000, "HTTP 503 from webhook", "")
        out = env.cli("stats")
        assert "paused    webhook/a for " in out.stdout and "(circuit: HTTP 503 from webhook)" in out.stdout, out.stdout
        assert "circuit   webhook/a open for " in out.stdout, out.stdout
        assert "opening 1, 3 failures; last: HTTP 503 from webhook" in out.stdout, out.stdout
        stats = env.cli_json("stats")
        assert len(stats["circuits"]) == 1, stats
        c = stats["circuits"][0]
        assert (c["scope"], c["state"], c["failures"], c["opens"], c["open_ms"], c["reason"]) == \
            ("webhook/a", "open", 3, 1, 60000, "HTTP 503 from webhook"), c
        assert 50000 < c["remaining_ms"] <= 60000, c
        assert [p["reason"] for p in stats["pauses"]] == ["circuit: HTTP 503 from webhook"], stats
        # The opening is over (moved back in time): half-open, the pause gone with it.
        env.r.hset(scope + "circuit", "opened_at", int(time.time() * 1000) - 61000)
        env.r.delete(scope + "pause")
        out = env.cli("stats")
        assert "circuit   webhook/a half-open: the next request is the fleet's one probe" in out.stdout, out.stdout
        c = env.cli_json("stats")["circuits"][0]
        assert (c["state"], c["remaining_ms"]) == ("half_open", 0), c
        # Failures below the threshold are no circuit to show.
        env.r.delete(scope + "circuit")
        env.r.eval(FAILURE, 3, *keys, 3, 60000, 300000, "HTTP 503 from webhook", "")
        assert "circuit " not in env.cli("stats").stdout
        assert env.cli_json("stats")["circuits"] == []
