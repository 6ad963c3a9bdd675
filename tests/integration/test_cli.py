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
