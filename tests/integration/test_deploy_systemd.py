"""The systemd unit for VM installs (deploy/systemd/outq.service): `systemd-analyze
verify` accepts it, `systemd-analyze security` rates its exposure low, its stop timeout
covers the drain, and its ExecStart is a command line the worker accepts."""
import configparser
import os
import re
import shutil
import subprocess
import tempfile

from harness import OUTQ, ROOT

UNIT = os.path.join(ROOT, "deploy", "systemd", "outq.service")
FINAL_WRITE_S = 3  # the final write deadline after the grace period (docs/operations.md "Shutdown and deploys")


def _unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(UNIT)
    return parser


def _seconds(value):
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    assert m, value
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def _with_built_binary(directory):
    """The unit with ExecStart pointing at the binary of this build (verify needs it to exist)."""
    path = os.path.join(directory, "outq.service")
    with open(path, "w") as f:
        f.write(open(UNIT).read().replace("/usr/local/bin/outq", OUTQ))
    return path


def test_systemd_analyze_verify_accepts_the_unit():
    assert shutil.which("systemd-analyze"), "systemd-analyze missing: apt-get install systemd (scripts/install-deps.sh)"
    d = tempfile.mkdtemp(prefix="outq-unit-")
    try:
        out = subprocess.run(["systemd-analyze", "verify", _with_built_binary(d)], capture_output=True, text=True,
                             timeout=60)
        # Warnings about this machine's own units are not the unit's; any line naming outq.service is.
        ours = [line for line in (out.stdout + out.stderr).splitlines() if "outq.service" in line]
        assert out.returncode == 0 and not ours, out.stdout + out.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_the_unit_is_hardened_and_rated_low_exposure():
    unit = _unit()["Service"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("DynamicUser", "yes"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("Restart", "on-failure"),
                       ("KillSignal", "SIGTERM")):
        assert unit.get(key) == value, (key, unit.get(key))
    assert unit.get("EnvironmentFile", "").lstrip("-") == "/etc/outq/outq.env"
    d = tempfile.mkdtemp(prefix="outq-unit-")
    try:
        out = subprocess.run(["systemd-analyze", "security", "--offline=yes", _with_built_binary(d)],
                             capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for outq\.service: ([\d.]+)", out.stdout + out.stderr)
        assert m, out.stdout[-2000:] + out.stderr[-2000:]
        assert float(m.group(1)) <= 2.0, "exposure %s (systemd-analyze security)" % m.group(1)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_the_stop_timeout_covers_the_drain_and_the_final_writes():
    unit = _unit()["Service"]
    example = open(os.path.join(ROOT, "deploy", "outq.example.json")).read()
    grace_ms = int(re.search(r'"shutdown_grace_ms":\s*(\d+)', example).group(1))
    timeout = _seconds(unit["TimeoutStopSec"])
    assert timeout >= grace_ms / 1000 + FINAL_WRITE_S + 5, (timeout, grace_ms)
    # Only SIGTERM to the worker: KillMode=mixed sends SIGKILL to the rest only at the end.
    assert unit["KillMode"] in ("mixed", "control-group"), unit["KillMode"]
    # A bad config exits 2: restarting cannot help.
    assert "2" in unit.get("RestartPreventExitStatus", "").split()


def test_the_exec_start_command_line_is_one_the_worker_accepts():
    line = _unit()["Service"]["ExecStart"].split()
    assert line[0] == "/usr/local/bin/outq" and line[1] == "run", line
    # `outq run --config FILE` with a file that does not exist fails on the file (exit 1 or 2),
    # not on the command line: the options are right.
    args = [OUTQ] + line[1:]
    args[args.index("--config") + 1] = "/nonexistent/outq.json"
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert out.returncode != 0 and "/nonexistent/outq.json" in out.stderr, out
    assert "unknown option" not in out.stderr and "usage" not in out.stderr.lower(), out.stderr
