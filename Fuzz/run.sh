#!/usr/bin/env bash
# Builds one fuzz target with libFuzzer + AddressSanitizer and runs it.
#   Fuzz/run.sh TARGET SECONDS [extra libFuzzer flags…]
# TARGET is FuzzRecordLogReader, FuzzLZ4, FuzzStorageSegment, FuzzBlockDecoder, FuzzFooterDecoder, FuzzManifestDecoder, FuzzHNSWCheckpoint, FuzzRaftRecords, FuzzRPCFrame, FuzzRPCMessages, FuzzRaftMessages, FuzzJSON, FuzzPayload, FuzzShardCommand, FuzzCatalog or FuzzClientMessages. Seeds come from Fuzz/seeds/TARGET (committed, built
# from the golden files); the growing corpus lives in Fuzz/corpus/TARGET (not committed).
# Prints libFuzzer's final stats; exits non-zero if the target crashed.
set -euo pipefail
target=${1:?usage: Fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: Fuzz/run.sh TARGET SECONDS}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VECTRON_FUZZ=1 swift build --product "$target" -c debug --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address 2>&1 | tail -n 3
mkdir -p "Fuzz/corpus/$target" "Fuzz/artifacts/$target"
seeds="Fuzz/seeds/$target"
mkdir -p "$seeds"
exec ".build-fuzz/debug/$target" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
    -artifact_prefix="Fuzz/artifacts/$target/" "$@" "Fuzz/corpus/$target" "$seeds"
