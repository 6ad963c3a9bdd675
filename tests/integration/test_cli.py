"""The operator's surface through the real binary: option parsing, --json output,
what a config needs, warnings and refusals (issue 15)."""
import json
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
        assert not env.r.keys(env.key("limit:*:pause")), "nothing paused"
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
