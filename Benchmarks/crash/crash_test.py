"""Crash test: load gcide-minilm-384 into a real `vectron serve` while it is kill -9'ed at random.

    python3 Benchmarks/crash/crash_test.py --binary .build/release/vectron --kills 20 --seed 1

A loader upserts the dataset's 100,000 vectors in batches of 256 (ids 0…99,999, payload
{"i": id, "parity": id % 2}) through the REST API. At seeded random moments the server is
killed with SIGKILL and started again on the same data directory. After every restart:
  * every acknowledged point is retrieved and compared with what was sent (payload equal, vector
    equal to the unit-length float32 vector within 2 ulp-ish tolerance — the server normalises
    for Cosine with its own float32 arithmetic; the largest difference is reported);
  * every point present that was never acknowledged (a batch in flight at the kill) is checked
    the same way: present points are whole, never torn;
  * the restart time (process start to "vectron ready") and the server's own recovery time are
    recorded.
When everything is loaded: recall@10 of the 1,000 queries against the exact ground truth.
Prints one JSON object per restart and a summary; exits 1 on any violation.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "gcide-minilm-384")
KEY = "crash-test-admin-key-0123456789"


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return rows.view(dtype) if dtype != np.int32 else rows


class Server:
    def __init__(self, binary, data_dir):
        self.binary, self.data_dir, self.process, self.port = binary, data_dir, None, None

    def start(self):
        started = time.monotonic()
        env = dict(os.environ, VECTRON_ADMIN_KEY=KEY)
        self.log = open(os.path.join(os.path.dirname(self.data_dir), "server.log"), "ab")
        self.process = subprocess.Popen([self.binary, "serve", "--data-dir", self.data_dir, "--http-port", "0", "--rpc-port", "0"],
                                        stdout=subprocess.PIPE, stderr=self.log, env=env)
        while True:
            line = self.process.stdout.readline().decode()
            if not line:
                raise RuntimeError("the server exited during start")
            match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
            if line.startswith("vectron ready"):
                return time.monotonic() - started

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()


class Client:
    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        self.connection.request(method, path, body=data, headers={"api-key": KEY, "content-type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload)["result"]


def check_points(client, ids, base, expected_present):
    """Retrieves `ids`; returns (present ids, max vector difference). Raises on a torn point."""
    present, worst = set(), 0.0
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for record in client.call("POST", "/collections/gcide/points", {"ids": chunk, "with_vector": True, "with_payload": True}):
            i = record["id"]
            present.add(i)
            if record["payload"] != {"i": i, "parity": i % 2}:
                raise AssertionError(f"point {i}: payload {record['payload']}")
            sent = base[i] / np.linalg.norm(base[i]).astype(np.float32)
            diff = float(np.max(np.abs(np.array(record["vector"], dtype=np.float32) - sent)))
            if diff > 1e-6:
                raise AssertionError(f"point {i}: vector differs by {diff}")
            worst = max(worst, diff)
    if expected_present:
        missing = set(ids) - present
        if missing:
            raise AssertionError(f"{len(missing)} acknowledged points are missing, e.g. {sorted(missing)[:5]}")
    return present, worst


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/vectron")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--ef", type=int, default=128)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = read_vecs(os.path.join(DATA, "base.fvecs"), np.float32)[: args.points]
    queries = read_vecs(os.path.join(DATA, "query.fvecs"), np.float32)
    truth = read_vecs(os.path.join(DATA, "groundtruth.ivecs"), np.int32)

    work = tempfile.mkdtemp(prefix="vectron-crash-")
    server = Server(os.path.abspath(args.binary), os.path.join(work, "data"))
    server.start()
    client = Client(server.port)
    client.call("PUT", "/collections/gcide", {"vectors": {"size": 384, "distance": "Cosine"}, "shard_number": 2,
                                              "hnsw_config": {"m": 16, "ef_construct": 200}})
    acked = []
    next_batch = 0
    batches = (args.points + args.batch - 1) // args.batch
    # Kill moments: seeded, spread over the load (as batch counts reached, plus a random delay).
    kill_at = sorted(rng.sample(range(1, batches), args.kills))
    restarts = []
    failures = 0
    kills_done = 0
    started_load = time.monotonic()
    while next_batch < batches:
        if kills_done < len(kill_at) and next_batch >= kill_at[kills_done]:
            # Kill while a batch is in flight: send it from a thread, kill after a random delay.
            lo = next_batch * args.batch
            ids = list(range(lo, min(lo + args.batch, args.points)))
            body = {"points": [{"id": i, "vector": base[i].tolist(), "payload": {"i": i, "parity": i % 2}} for i in ids]}
            outcome = {}

            def send():
                try:
                    Client(server.port).call("PUT", "/collections/gcide/points", body)
                    outcome["ok"] = True
                except Exception as error:  # the kill cuts the connection
                    outcome["error"] = str(error)

            thread = threading.Thread(target=send)
            thread.start()
            time.sleep(rng.uniform(0.0, 0.05))
            server.kill()
            thread.join()
            kills_done += 1
            if outcome.get("ok"):
                acked.extend(ids)
            restart_seconds = server.start()
            client = Client(server.port)
            present, worst = check_points(client, acked, base, True)
            in_flight_present, _ = check_points(client, ids, base, False)
            recovered = None
            with open(os.path.join(work, "server.log"), "rb") as log:
                found = re.findall(rb"seconds=([0-9.e-]+) shards=\d+ \[Server\] recovered", log.read())
                if found:
                    recovered = float(found[-1])
            record = {"kill": kills_done, "acknowledged": len(acked), "in_flight_acknowledged": bool(outcome.get("ok")),
                      "in_flight_present": len(in_flight_present), "restart_s": round(restart_seconds, 3),
                      "recovery_s": recovered, "max_vector_diff": worst}
            restarts.append(record)
            print(json.dumps(record), flush=True)
            if not outcome.get("ok") and len(in_flight_present) == len(ids):
                acked.extend(ids)  # applied in full (checked above) though the answer was lost
            if outcome.get("ok") or len(in_flight_present) == len(ids):
                next_batch += 1  # applied: go on; otherwise send the batch again below
            continue
        lo = next_batch * args.batch
        ids = list(range(lo, min(lo + args.batch, args.points)))
        body = {"points": [{"id": i, "vector": base[i].tolist(), "payload": {"i": i, "parity": i % 2}} for i in ids]}
        client.call("PUT", "/collections/gcide/points", body)
        acked.extend(ids)
        next_batch += 1
    load_seconds = time.monotonic() - started_load
    _, worst = check_points(client, acked, base, True)
    count = client.call("POST", "/collections/gcide/points/count", {})["count"]
    # Recall@10 over the queries (ground truth over the whole base: only meaningful at 100 k).
    hits = 0
    started = time.monotonic()
    for q in range(len(queries)):
        result = client.call("POST", "/collections/gcide/points/search",
                             {"vector": queries[q].tolist(), "limit": 10, "params": {"hnsw_ef": args.ef}})
        got = {r["id"] for r in result}
        hits += len(got & set(int(x) for x in truth[q][:10]))
    search_seconds = time.monotonic() - started
    recall = hits / (10 * len(queries))
    # A clean stop and start: the restart loads checkpoints (nothing to replay).
    server.stop()
    clean_restart = server.start()
    summary = {"kills": kills_done, "points": count, "acknowledged": len(acked), "load_s": round(load_seconds, 1),
               "recall_at_10": recall, "hnsw_ef": args.ef, "search_qps_1_client_python": round(len(queries) / search_seconds, 1),
               "restart_after_kill_s": [r["restart_s"] for r in restarts],
               "clean_restart_s": round(clean_restart, 3), "max_vector_diff": worst}
    print(json.dumps(summary), flush=True)
    server.stop()
    shutil.rmtree(work)
    ok = count == args.points and len(acked) == args.points and (args.points < 100_000 or recall >= 0.95)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
