#!/usr/bin/env bash
# Runs the record-log benchmark matrix of Benchmarks/RESULTS.md: 1, 16 and 128 concurrent
# appenders × 128 B, 1 KiB and 16 KiB records, each beside the raw pwrite + fdatasync loop in
# the same run. Usage: Benchmarks/log-matrix.sh [SECONDS_PER_SYSTEM] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rounds=${2:-10}
swift build -c release --product vectron-bench >&2
for kind in tasks threads; do
    for bytes in 128 1024 16384; do
        for appenders in 1 16 128; do
            .build/release/vectron-bench log --appenders "$appenders" --record-bytes "$bytes" \
                --seconds "$seconds" --rounds "$rounds" --kind "$kind"
        done
    done
done
