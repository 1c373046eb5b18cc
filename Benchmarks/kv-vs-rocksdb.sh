#!/usr/bin/env bash
# Storage engine vs RocksDB, side by side in one run on the same disk (issue 3's benchmark).
#
#   Benchmarks/kv-vs-rocksdb.sh [value sizes…]        default: 100 1536
#   NUM=1000000 CACHE=33554432 DIR=./.kv-bench ROUNDS=1 Benchmarks/kv-vs-rocksdb.sh 100
#
# Needs `db_bench` (Debian: apt-get install rocksdb-tools) and a release build of vectron-bench
# (built here). For each value size both tools run with the same flags, each after a `sync` (so
# neither pays for writing back the other's dirty pages); odd rounds run RocksDB first, even
# rounds Vectron first (ROUNDS=2 or more balances the order; ratios are means over rounds):
#   1. fillseq,fillrandom,readrandom,readseq    (WAL on, no per-write sync; reads use fillrandom's DB)
#   2. fillrandom --sync=1 --batch_size=1000   (db_bench 7.8 has no "sync every n writes" flag:
#      a synced batch of 1,000 puts is its closest form — one WAL write and one fsync per 1,000 keys;
#      Vectron runs the identical flags, and also --writes_per_sync=1000 with single puts, for reference)
# Prints every tool's own output lines, then one ratio line per workload (Vectron ops/s ÷ RocksDB
# ops/s; ≥ 1.00 means Vectron is at least as fast), then write amplification and disk footprint.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
NUM=${NUM:-1000000}
CACHE=${CACHE:-33554432}
DIR=${DIR:-$root/.kv-bench}
ROUNDS=${ROUNDS:-1}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100 1536)
command -v db_bench >/dev/null || { echo "db_bench not found: apt-get install rocksdb-tools" >&2; exit 2; }
(cd "$root" && swift build -c release --product vectron-bench 2>&1 | tail -n 1) >&2
vb="$root/.build/release/vectron-bench"
mkdir -p "$DIR"
out=$(mktemp)
trap 'rm -f "$out" "$out.rocksdb"' EXIT

footprint() { du -sb "$1" 2>/dev/null | cut -f1; }

for size in "${sizes[@]}"; do
    common=(--num="$NUM" --key_size=16 --value_size="$size" --cache_size="$CACHE")
    echo "== value size $size, $NUM keys, cache $CACHE, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
    rocksdb_main() {
        # `stats` (last) prints the compaction statistics of fillrandom's database.
        db_bench "${common[@]}" --benchmarks=fillseq,fillrandom,readrandom,readseq,stats --compression_type=lz4 \
            --db="$DIR/rocksdb" --threads=1 > "$out.rocksdb" 2>&1 || true
        grep -E "micros/op|Cumulative (compaction|WAL)|^Flush" "$out.rocksdb" | sed "s/^/rocksdb: /" >&2 || cat "$out.rocksdb" >&2
        sed -n 's/^\(fill[a-z]*\|read[a-z]*\) *: .* \([0-9]*\) ops\/sec.*/rocksdb \1 \2/p
                s/^Flush(GB): cumulative \([0-9.]*\).*/rocksdb-flush-gb \1/p
                s/^Cumulative compaction: \([0-9.]*\) GB write.*/rocksdb-compaction-gb \1/p
                s/^Cumulative WAL: .* written: \([0-9.]*\) GB.*/rocksdb-wal-gb \1/p' "$out.rocksdb" >> "$out"
        echo "rocksdb-footprint $(footprint "$DIR/rocksdb")" >> "$out"
    }
    vectron_main() {
        "$vb" kv "${common[@]}" --benchmarks=fillseq,fillrandom,readrandom,readseq --db="$DIR/vectron" 2>&1 | tee >(cat >&2) \
            | sed -n 's/^\(fill[a-z]*\|read[a-z]*\) *: .* \([0-9]*\) ops\/sec.*/vectron \1 \2/p; s/^vectron stats: write-amp \([0-9.]*\).*/vectron-wamp \1/p; s/^vectron disk footprint: \([0-9]*\).*/vectron-footprint \1/p' >> "$out"
    }
    rocksdb_synced() {
        db_bench "${common[@]}" --benchmarks=fillrandom --sync=1 --batch_size=1000 --compression_type=lz4 \
            --db="$DIR/rocksdb" --threads=1 2>&1 | tee >(cat >&2) | sed -n 's/^fillrandom *: .* \([0-9]*\) ops\/sec.*/rocksdb fillrandom-sync1000 \1/p' >> "$out" || true
    }
    vectron_synced() {
        "$vb" kv "${common[@]}" --benchmarks=fillrandom --sync=1 --batch_size=1000 --db="$DIR/vectron" 2>&1 | tee >(cat >&2) \
            | sed -n 's/^fillrandom *: .* \([0-9]*\) ops\/sec.*/vectron fillrandom-sync1000 \1/p' >> "$out"
    }
    # Each tool starts on a clean page cache (`sync`: no dirty pages of the other tool's run are
    # written back during its own), and odd rounds run RocksDB first, even rounds Vectron first.
    both() {  # $1 = rocksdb step, $2 = vectron step, $3 = round
        rm -rf "$DIR/rocksdb" "$DIR/vectron"
        if [ $(($3 % 2)) -eq 1 ]; then sync; "$1"; sync; "$2"; else sync; "$2"; sync; "$1"; fi
    }
    for round in $(seq 1 "$ROUNDS"); do
        both rocksdb_main vectron_main "$round"
        both rocksdb_synced vectron_synced "$round"
        rm -rf "$DIR/vectron"
        sync
        "$vb" kv "${common[@]}" --benchmarks=fillrandom --writes_per_sync=1000 --db="$DIR/vectron" 2>&1 | tee >(cat >&2) \
            | sed -n 's/^fillrandom *: .* \([0-9]*\) ops\/sec.*/vectron-only fillrandom-writes_per_sync1000 \1/p' >> "$out"
        rm -rf "$DIR/rocksdb" "$DIR/vectron"
    done
    echo "-- value size $size: Vectron ÷ RocksDB (ops/s, mean over rounds)"
    for workload in fillseq fillrandom readrandom readseq fillrandom-sync1000; do
        awk -v w="$workload" '$2 == w && $1 == "rocksdb" { r += $3; nr++ } $2 == w && $1 == "vectron" { v += $3; nv++ }
            END { if (nr && nv) printf "ratio %-20s vectron %9.0f  rocksdb %9.0f  = %.2f\n", w, v/nv, r/nr, (v/nv)/(r/nr) }' "$out"
    done
    awk '$1 == "vectron-only" { v += $3; nv++ } END { if (nv) printf "vectron alone: fillrandom --writes_per_sync=1000 (single puts, sync every 1,000th) %.0f ops/s\n", v/nv }' "$out"
    awk -v n="$NUM" -v s="$size" '
        $1 == "rocksdb-flush-gb" { f = $2 } $1 == "rocksdb-compaction-gb" { c = $2 } $1 == "rocksdb-wal-gb" { w = $2 }
        $1 == "rocksdb-footprint" { rf = $2 } $1 == "vectron-wamp" { vw = $2 } $1 == "vectron-footprint" { vf = $2 }
        END { user = n * (16 + s) / 1e9
              printf "write amplification (WAL+flush+compaction ÷ user bytes, after fillrandom): vectron %.2f  rocksdb %.2f\n", vw, (f + c + w) / user
              printf "disk footprint after fillrandom+reads: vectron %d bytes  rocksdb %d bytes\n", vf, rf }' "$out"
    : > "$out"
done
