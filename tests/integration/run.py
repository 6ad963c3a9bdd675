"""Runs every test_* function of tests/integration/test_*.py, each on its own,
and ends with "integration: N passed, N failed".

    /usr/bin/python3 tests/integration/run.py --build-dir build [-k substring]
"""
import argparse
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


class TestTimeout(Exception):
    """Raised in the test's own thread when it runs longer than --test-timeout, so its
    `with Env()` still stops every process it started."""


def _alarm(signum, frame):
    raise TestTimeout("the test ran longer than its time limit")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", default=os.path.join(HERE, "..", "..", "build"))
    parser.add_argument("-k", dest="filter", default="")
    parser.add_argument("--test-timeout", type=int, default=300, help="seconds per test (a hang is a failure)")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    os.environ["OUTQ_BUILD_DIR"] = os.path.abspath(args.build_dir)
    if not os.access(os.path.join(os.environ["OUTQ_BUILD_DIR"], "worker", "outq"), os.X_OK):
        print("warning: no worker binary at %s/worker/outq (build first)" % os.environ["OUTQ_BUILD_DIR"], flush=True)
    sys.path.insert(0, HERE)
    passed = failed = 0
    failures = []  # repeated at the end: CI often shows only the tail of the output
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(HERE, name))
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - a broken test module is a failure, not a crash
            failed += 1
            failures.append(name)
            print("FAIL %s (import)\n%s" % (name, traceback.format_exc()), flush=True)
            continue
        for attr in sorted(dir(module)):
            fn = getattr(module, attr)
            if not attr.startswith("test_") or not callable(fn):
                continue
            full = "%s::%s" % (name[:-3], attr)
            if args.filter and args.filter not in full:
                continue
            t0 = time.monotonic()
            signal.alarm(args.test_timeout)
            try:
                fn()
                signal.alarm(0)
                passed += 1
                print("PASS %s (%.1fs)" % (full, time.monotonic() - t0), flush=True)
            except Exception:  # noqa: BLE001
                signal.alarm(0)
                failed += 1
                failures.append(full)
                print("FAIL %s (%.1fs)\n%s" % (full, time.monotonic() - t0, traceback.format_exc()), flush=True)
    for full in failures:
        print("integration: failed %s" % full, flush=True)
    print("integration: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
