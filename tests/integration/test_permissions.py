"""Redis ACL users without a command the worker needs: the worker refuses to start,
says which command, and sends nothing; without one it can do without, it works."""
import re
import time

from harness import Env, job, wait_until


def _acl_user(env, name, *rules):
    env.r.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-" + name, "~*", "&*", "+@all", *rules)
    config = env.config()
    config["redis"]["url"] = "redis://%s:pw-%s@127.0.0.1:%d/0" % (name, name, env.redis.port)
    return config


def _refuses_to_start(env, config, command_pattern):
    env.enqueue([job("must-wait")])
    w = env.worker(config)
    t0 = time.monotonic()
    try:
        code = w.wait(timeout=20)
    except AssertionError:
        code = None  # still running
    took = time.monotonic() - t0
    lines = w.log().splitlines()
    problems = []
    if code is None:
        problems.append("still running after 20 s")
    elif code == 0:
        problems.append("exit code 0")
    named = [line for line in lines if "level=error" in line and re.search(command_pattern, line, re.IGNORECASE)]
    if not named:
        problems.append("no level=error line naming %s" % command_pattern)
    if len(lines) >= 20:
        problems.append("%d log lines (a loop?)" % len(lines))
    if env.hook_requests():
        problems.append("%d requests sent" % len(env.hook_requests()))
    if env.result("must-wait") or env.r.xlen(env.key("dead")):
        problems.append("an outcome was written: %s" % env.result("must-wait"))
    if env.r.xlen(env.key("jobs")) != 1:
        problems.append("the job left the stream (acknowledged and deleted)")
    assert not problems, "%s (exit %s after %.1f s); the log:\n%s" % ("; ".join(problems), code, took,
                                                                      "\n".join(lines[:10]))


def test_a_user_without_xautoclaim_refuses_to_start():
    with Env() as env:
        config = _acl_user(env, "noclaim", "-xautoclaim")
        _refuses_to_start(env, config, r"xautoclaim")


def test_a_user_without_eval_refuses_to_start():
    with Env() as env:
        config = _acl_user(env, "noeval", "-eval", "-evalsha")
        _refuses_to_start(env, config, r"eval")


def test_a_user_without_client_still_starts_and_sends():
    """CLIENT SETNAME is a nicety: refused, the worker goes on without a connection name."""
    with Env() as env:
        config = _acl_user(env, "noclient", "-client")
        w = env.worker(config)
        env.enqueue([job("named-or-not")])
        try:
            result = env.wait_results(["named-or-not"], timeout=20)["named-or-not"]
        except AssertionError as e:
            raise AssertionError("%s; the worker's log:\n%s" % (e, w.log_tail(5)))
        assert result["status"] == "sent", result
        assert w.alive()
        assert len(env.hook_requests()) == 1
        wait_until(lambda: env.r.xlen(env.key("jobs")) == 0, 10, "the job to be acknowledged")
