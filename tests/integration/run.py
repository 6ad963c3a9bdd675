"""Runs every test_* function of tests/integration/test_*.py, each on its own,
and ends with "integration: N passed, N failed".

    /usr/bin/python3 tests/integration/run.py --build-dir build [-k substring]
"""
import argparse
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", default=os.path.join(HERE, "..", "..", "build"))
    parser.add_argument("-k", dest="filter", default="")
    args = parser.parse_args()
    os.environ["OUTQ_BUILD_DIR"] = os.path.abspath(args.build_dir)
    sys.path.insert(0, HERE)
    passed = failed = 0
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(HERE, name))
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - a broken test module is a failure, not a crash
            failed += 1
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
            try:
                fn()
                passed += 1
                print("PASS %s (%.1fs)" % (full, time.monotonic() - t0), flush=True)
            except Exception:  # noqa: BLE001
                failed += 1
                print("FAIL %s (%.1fs)\n%s" % (full, time.monotonic() - t0, traceback.format_exc()), flush=True)
    print("integration: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
