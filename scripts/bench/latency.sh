#!/usr/bin/env bash
# Open-loop latency, outq against BullMQ (scripts/bench/latency.py): a producer
# at a fixed rate, latencies from the schedule to the provider and to the
# completion event. Same set-up as send-n.sh (installs what it needs, builds).
#
#   scripts/bench/latency.sh [--seconds 10] [--only outq|bullmq] [--delayed 1000]
#   scripts/bench/latency.sh --help
set -euo pipefail
OUTQ_BENCH_PY=latency.py exec bash "$(dirname "${BASH_SOURCE[0]}")/send-n.sh" "$@"
