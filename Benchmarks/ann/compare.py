#!/usr/bin/env python3
"""Vectron's HNSW vs hnswlib, side by side in one run on the same files and parameters.

    python3 Benchmarks/ann/compare.py [--data DIR] [--m 16] [--ef-construction 200]
        [--ef 10,16,...] [--k 10] [--threads 2] [--queries N]

DIR holds base.fvecs, query.fvecs and groundtruth.ivecs (default: ../shared/data/gcide-minilm-384).
Needs `pip install hnswlib numpy` and a release build of vectron-bench (built here).

For each system: build on --threads threads, then for each ef run every query one at a time on
one thread (hnswlib: one knn_query call per query, num_threads=1) and measure recall@k and QPS.
Prints both curves, the QPS of each at recall 0.95 and 0.99 (linear interpolation on the curve),
their ratios, build time and peak resident memory (each system runs in its own process, which
also holds the base vectors, the same for both).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_vecs(path, dtype):
    import numpy as np
    raw = np.fromfile(path, dtype=np.int32)
    dimension = raw[0]
    rows = raw.reshape(-1, dimension + 1)[:, 1:]
    return rows.view(dtype) if dtype != np.int32 else rows


def run_hnswlib(args):
    """Runs in a child process (so its peak RSS is its own) and prints one JSON line per figure."""
    import hnswlib
    import numpy as np
    base = np.ascontiguousarray(read_vecs(os.path.join(args.data, "base.fvecs"), np.float32))
    queries = np.ascontiguousarray(read_vecs(os.path.join(args.data, "query.fvecs"), np.float32))
    truth = read_vecs(os.path.join(args.data, "groundtruth.ivecs"), np.int32)
    if args.queries:
        queries, truth = queries[: args.queries], truth[: args.queries]
    space = {"cosine": "cosine", "l2": "l2", "dot": "ip"}[args.metric]
    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=base.shape[0], M=args.m, ef_construction=args.ef_construction, random_seed=100)
    index.set_num_threads(args.threads)
    started = time.perf_counter()
    index.add_items(base, np.arange(base.shape[0]))
    build = time.perf_counter() - started
    index.set_num_threads(1)
    for ef in args.efs:
        index.set_ef(ef)
        found = 0
        started = time.perf_counter()
        results = [index.knn_query(query, k=args.k, num_threads=1)[0][0] for query in queries]
        seconds = time.perf_counter() - started
        for row, expected in zip(results, truth):
            found += len(set(row.tolist()) & set(expected[: args.k].tolist()))
        print(json.dumps({"ef": ef, "recall": round(found / (len(queries) * args.k), 4), "qps": round(len(queries) / seconds, 1)}))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"build_seconds": round(build, 3), "build_threads": args.threads, "peak_rss_bytes": peak}))


def at_recall(curve, target):
    """QPS at `target` recall by linear interpolation between the two points around it."""
    points = sorted((p["recall"], p["qps"]) for p in curve)
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 <= target <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


def parse(lines):
    curve = [json.loads(l) for l in lines if l.startswith("{") and '"ef"' in l]
    summary = [json.loads(l) for l in lines if l.startswith("{") and '"build_seconds"' in l]
    return curve, (summary[-1] if summary else {})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "gcide-minilm-384"))
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", default="10,16,24,32,48,64,100,128,200,300,400")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=0)
    parser.add_argument("--hnswlib-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.efs = [int(x) for x in args.ef.split(",")]
    if args.hnswlib_child:
        run_hnswlib(args)
        return

    subprocess.run(["swift", "build", "-c", "release", "--product", "vectron-bench"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    common = ["--m", str(args.m), "--ef", args.ef, "--k", str(args.k), "--threads", str(args.threads)]
    vectron_command = [os.path.join(ROOT, ".build", "release", "vectron-bench"), "ann",
                       "--base", os.path.join(args.data, "base.fvecs"), "--query", os.path.join(args.data, "query.fvecs"),
                       "--truth", os.path.join(args.data, "groundtruth.ivecs"), "--metric", args.metric,
                       "--ef-construction", str(args.ef_construction), "--save", os.path.join(ROOT, ".ann-bench.ckpt")] + common
    if args.queries:
        vectron_command += ["--queries", str(args.queries)]
    hnswlib_command = [sys.executable, os.path.abspath(__file__), "--hnswlib-child", "--data", args.data, "--metric", args.metric,
                       "--ef-construction", str(args.ef_construction), "--queries", str(args.queries)] + common

    print(f"== {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {os.cpu_count()} cores, m={args.m} "
          f"ef_construction={args.ef_construction} k={args.k} build threads={args.threads}, data {args.data}")
    outputs = {}
    for name, command in (("hnswlib", hnswlib_command), ("vectron", vectron_command)):
        lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
        for line in lines:
            print(f"{name}: {line}")
        outputs[name] = parse(lines)
    # A restart: load the checkpoint in a fresh process (the in-process figure above loads
    # beside the built index, so it also pays for faulting in fresh memory next to it).
    restart_command = vectron_command[:vectron_command.index("--save")] + ["--load", os.path.join(ROOT, ".ann-bench.ckpt"), "--ef", args.ef.split(",")[0], "--queries", "100"]
    restart = parse(subprocess.run(restart_command, check=True, capture_output=True, text=True).stdout.splitlines())[1]
    print(f"vectron restart: {json.dumps(restart)}")
    try:
        os.remove(os.path.join(ROOT, ".ann-bench.ckpt"))
    except FileNotFoundError:
        pass

    (v_curve, v_sum), (h_curve, h_sum) = outputs["vectron"], outputs["hnswlib"]
    print("-- curves (ef: vectron recall/qps | hnswlib recall/qps)")
    for v, h in zip(v_curve, h_curve):
        print(f"ef {v['ef']:4d}: {v['recall']:.4f} {v['qps']:9.1f} | {h['recall']:.4f} {h['qps']:9.1f}")
    for target, bar in ((0.95, 1.3), (0.99, 1.0)):
        v, h = at_recall(v_curve, target), at_recall(h_curve, target)
        if v and h:
            print(f"QPS at recall {target}: vectron {v:.0f}  hnswlib {h:.0f}  = {v / h:.2f} (target >= {bar})")
        else:
            print(f"QPS at recall {target}: not reached by both curves (vectron {v}, hnswlib {h})")
    if v_sum and h_sum:
        print(f"build seconds ({args.threads} threads): vectron {v_sum['build_seconds']}  hnswlib {h_sum['build_seconds']}"
              f"  = {v_sum['build_seconds'] / h_sum['build_seconds']:.2f} (target <= 0.8)")
        print(f"peak RSS bytes: vectron {v_sum['peak_rss_bytes']}  hnswlib {h_sum['peak_rss_bytes']}"
              f"  = {v_sum['peak_rss_bytes'] / h_sum['peak_rss_bytes']:.2f} (target <= 1.1)")
        if "load_seconds" in v_sum:
            print(f"vectron checkpoint: save {v_sum['save_seconds']} s, load {v_sum['load_seconds']} s in the building process, "
                  f"{restart.get('build_seconds')} s in a fresh process (target load <= 1 s)")


if __name__ == "__main__":
    main()
