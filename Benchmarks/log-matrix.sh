#!/usr/bin/env bash
# Runs the record-log benchmark matrix of Benchmarks/RESULTS.md: 1, 16 and 128 concurrent
# appenders × 128 B, 1 KiB and 16 KiB records (async task appenders), plus the 1 KiB row with
# blocking thread appenders, each beside the raw pwrite + fdatasync loop in the same run.
# The log prepares its segments in the background (zero-filled, format version 2); set
# VECTRON_LOG_PREPARATION=none to measure segments created empty (the behaviour before
# 2026-11-27), and VECTRON_BENCH_RAW=overwrite to make the raw loop overwrite a pre-zeroed file.
# Usage: Benchmarks/log-matrix.sh [SECONDS_PER_SYSTEM] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
rounds=${2:-2}
swift build -c release --product vectron-bench >&2
run() { .build/release/vectron-bench log --seconds "$seconds" --rounds "$rounds" "$@"; }
for bytes in 128 1024 16384; do
    for appenders in 1 16 128; do
        run --appenders "$appenders" --record-bytes "$bytes" --kind tasks
    done
done
for appenders in 1 16 128; do
    run --appenders "$appenders" --record-bytes 1024 --kind threads
done
