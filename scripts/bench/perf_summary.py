"""Where the outq worker's CPU goes, from a perf profile with call graphs
(scripts/bench/send-n.sh --only outq --perf FILE records one):

    /usr/bin/python3 scripts/bench/perf_summary.py FILE [--top 25]

Prints the share of samples (1) by what the CPU was doing at the leaf (kernel,
malloc/free, printf, JSON, ...), (2) by the nearest outq:: function on the
stack, with the leaf categories under it, and (3) inclusive per outq::
function (a sample counts once for every outq:: function on its stack).
"""
import argparse
import collections
import re
import subprocess
import sys

CATEGORIES = [  # (category, test on (symbol, dso)), first match wins
    ("kernel", lambda s, d: "kernel" in d),
    ("malloc/free", lambda s, d: re.search(r"malloc|free|_int_|unlink_chunk|operator new|operator delete|"
                                           r"consolidate|tcache|sysmalloc", s)),
    ("memcpy/str*", lambda s, d: re.search(r"mem(move|cpy|set|cmp|chr)|str(len|chr|cmp)", s)),
    ("printf", lambda s, d: re.search(r"printf|_IO_|xsputn|IO_validate_vtable|done_add_func|_itoa_word", s)),
    ("std::string", lambda s, d: re.search(r"basic_string|char_traits", s)),
    ("containers", lambda s, d: re.search(r"^std::(vector|_Hashtable|_Rb_tree|deque|erase_if|__detail::_Mod)", s)),
    ("coroutines", lambda s, d: re.search(r"coroutine_handle|awaitable_frame", s)),
    ("rapidjson", lambda s, d: "rapidjson" in s),
    ("hiredis", lambda s, d: "hiredis" in d or s.startswith("redis")),
    ("openssl", lambda s, d: "libssl" in d or "libcrypto" in d),
    ("beast", lambda s, d: s.startswith("boost::beast")),
    ("asio", lambda s, d: s.startswith("boost::asio")),
    ("outq", lambda s, d: s.startswith("outq::")),
    ("libstdc++", lambda s, d: "libstdc++" in d),
]


def category(sym, dso):
    for name, test in CATEGORIES:
        if test(sym, dso):
            return name
    return "other"


def short(sym):
    sym = re.sub(r"\(.*", "", sym)
    return sym if len(sym) <= 100 else sym[:97] + "..."


def samples(perf_data):
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "ip,sym,dso"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout.decode(errors="replace")
    stack = []
    for line in out.splitlines():
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)\s*$", line)
        if m:
            stack.append((m.group(1), m.group(2)))
    if stack:
        yield stack


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("perf_data")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    leaf = collections.Counter()
    owner = collections.Counter()
    owner_leaf = collections.defaultdict(collections.Counter)
    inclusive = collections.Counter()
    n = 0
    for stack in samples(args.perf_data):
        n += 1
        # perf lists inlined frames first with the dso "inlined": the real dso is the first other one.
        dso = next((d for _, d in stack if d != "inlined"), "")
        c = category(stack[0][0], dso)
        leaf[c] += 1
        o = next((short(s) for s, _ in stack if s.startswith("outq::")), "(no outq:: frame: event loop, syscalls)")
        owner[o] += 1
        owner_leaf[o][c] += 1
        for s in {short(s) for s, _ in stack if s.startswith("outq::") or s.startswith("redisFormat")}:
            inclusive[s] += 1
    if not n:
        sys.exit("no samples in %s" % args.perf_data)
    pct = lambda v: 100.0 * v / n
    print("%d samples\n\nleaf (self) by category:" % n)
    for k, v in leaf.most_common():
        print("  %5.1f%%  %s" % (pct(v), k))
    print("\nnearest outq:: function (its own code and the non-outq code it calls):")
    for k, v in owner.most_common(args.top):
        detail = ", ".join("%s %.1f" % (c, pct(x)) for c, x in owner_leaf[k].most_common(4))
        print("  %5.1f%%  %s  [%s]" % (pct(v), k, detail))
    print("\ninclusive:")
    for k, v in inclusive.most_common(args.top):
        print("  %5.1f%%  %s" % (pct(v), k))


if __name__ == "__main__":
    main()
