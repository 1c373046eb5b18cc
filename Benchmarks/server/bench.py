"""Vectron over REST against Chroma and Milvus Lite, side by side in one run, on gcide-minilm-384.

    swift build -c release --product vectron
    pip install chromadb milvus-lite pymilvus     # the peers (Vectron's side needs only the stdlib)
    python3 Benchmarks/server/bench.py --binary .build/release/vectron

For each system, at its durable defaults, on the same machine and data. Index build settings are
each system's defaults, written out where the script names them: Vectron M = 16, ef_construct 100
(its default, Qdrant's too); Chroma max_neighbors 16, ef_construction 100 (its defaults, passed
explicitly); Milvus Lite its default index, untouched.
  * ingest: the 100,000 base vectors in batches of 256 from one loader (points/s; the clock stops
    once the last batch is acknowledged — and, for Milvus Lite, flushed). Vectron's batches go
    with `?wait=false` (answered once durable in its log, as Qdrant's wait=false), except the
    last, which waits for its apply: Vectron's clock stops once every point is durable and
    searchable;
  * search: the 1,000 queries, top 10, with the smallest search-effort setting (from a fixed
    ladder) whose recall@10 against the exact ground truth is at least 0.95; then QPS with 1 and
    with 16 concurrent clients (processes, so Python's GIL does not serialise them; each client
    runs all 1,000 queries).
Client processes are spawned (not forked: a fork of a process holding Chroma's threads
deadlocks). Vectron is measured over HTTP (a keep-alive connection per client, request bodies prepared
before the clock starts); Chroma's PersistentClient and Milvus Lite run inside the Python
process, with no network hop. Prints one JSON object per measurement and a summary.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "gcide-minilm-384")
KEY = "bench-admin-key-0123456789abcdef"
LADDER = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return rows.view(dtype) if dtype != np.int32 else rows


def recall(results, truth):
    hits = sum(len(set(r) & set(int(x) for x in truth[q][:10])) for q, r in enumerate(results))
    return hits / (10 * len(results))


def emit(record):
    print(json.dumps(record), flush=True)


# ---------------------------------------------------------------- Vectron (REST)

def vectron_search_worker(args):
    port, bodies = args
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"api-key": KEY, "content-type": "application/json"}
    start = time.perf_counter()
    for body in bodies:
        connection.request("POST", "/collections/bench/points/search", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
    return time.perf_counter() - start


class Vectron:
    name = "vectron"

    def __init__(self, binary, work):
        self.data = os.path.join(work, "vectron")
        env = dict(os.environ, VECTRON_ADMIN_KEY=KEY)
        self.process = subprocess.Popen([binary, "serve", "--data-dir", self.data, "--http-port", "0", "--rpc-port", "0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        while True:
            line = self.process.stdout.readline().decode()
            if not line:
                raise RuntimeError("vectron exited")
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
            if line.startswith("vectron ready"):
                break
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def call(self, method, path, body):
        self.connection.request(method, path, body=body, headers={"api-key": KEY, "content-type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
        return json.loads(data)["result"]

    def ingest(self, base, batch):
        bodies = []
        for start in range(0, len(base), batch):
            ids = range(start, min(start + batch, len(base)))
            bodies.append(json.dumps({"points": [{"id": i, "vector": base[i].tolist()} for i in ids]}).encode())
        # Preparing the bodies can outlast the server's 60 s idle timeout on a busy machine: start
        # on a fresh connection (http.client reconnects on the next request).
        self.connection.close()
        self.call("PUT", "/collections/bench", json.dumps({"vectors": {"size": base.shape[1], "distance": "Cosine"},
                                                           "hnsw_config": {"m": 16, "ef_construct": 100}}).encode())
        # Every batch but the last with ?wait=false: answered once durable in the log (fsync'ed),
        # applied to the index behind it, in order. The last waits for its apply, so the clock
        # stops once every point is durable and searchable.
        started = time.perf_counter()
        for number, body in enumerate(bodies):
            last = number == len(bodies) - 1
            self.call("PUT", "/collections/bench/points" + ("" if last else "?wait=false"), body)
        elapsed = time.perf_counter() - started
        count = self.call("POST", "/collections/bench/points/count", b"{}")["count"]
        if count != len(base):
            raise RuntimeError(f"vectron holds {count} points after the ingest, not {len(base)}")
        return elapsed

    def bodies(self, queries, effort):
        return [json.dumps({"vector": q.tolist(), "limit": 10, "params": {"hnsw_ef": effort}}).encode() for q in queries]

    def search_all(self, queries, effort):
        return [[r["id"] for r in self.call("POST", "/collections/bench/points/search", body)] for body in self.bodies(queries, effort)]

    def qps(self, queries, effort, clients):
        bodies = self.bodies(queries, effort)
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            started = time.perf_counter()
            pool.map(vectron_search_worker, [(self.port, bodies)] * clients)
            elapsed = time.perf_counter() - started
        return clients * len(queries) / elapsed

    def close(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()


# ---------------------------------------------------------------- Chroma (PersistentClient)

def chroma_worker(args):
    path, effort, queries = args
    import chromadb
    collection = chromadb.PersistentClient(path=path).get_collection("bench")
    start = time.perf_counter()
    for q in queries:
        collection.query(query_embeddings=[q], n_results=10)
    return time.perf_counter() - start


class Chroma:
    name = "chroma"

    def __init__(self, work):
        import chromadb
        self.path = os.path.join(work, "chroma")
        self.client = chromadb.PersistentClient(path=self.path)

    def ingest(self, base, batch):
        self.collection = self.client.create_collection(
            "bench", configuration={"hnsw": {"space": "cosine", "ef_construction": 100, "max_neighbors": 16}})
        started = time.perf_counter()
        for start in range(0, len(base), batch):
            ids = [str(i) for i in range(start, min(start + batch, len(base)))]
            self.collection.add(ids=ids, embeddings=base[start:start + len(ids)])
        return time.perf_counter() - started

    def set_effort(self, effort):
        self.collection.modify(configuration={"hnsw": {"ef_search": effort}})

    def search_all(self, queries, effort):
        self.set_effort(effort)
        out = []
        for q in queries:
            out.append([int(i) for i in self.collection.query(query_embeddings=[q], n_results=10)["ids"][0]])
        return out

    def qps(self, queries, effort, clients):
        self.set_effort(effort)
        rows = [q for q in queries]
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            started = time.perf_counter()
            pool.map(chroma_worker, [(self.path, effort, rows)] * clients)
            elapsed = time.perf_counter() - started
        return clients * len(queries) / elapsed

    def close(self):
        pass


# ---------------------------------------------------------------- Milvus Lite

def milvus_worker(args):
    path, effort, queries = args
    from pymilvus import MilvusClient
    client = MilvusClient(path)
    start = time.perf_counter()
    for q in queries:
        client.search("bench", data=[q], limit=10, search_params={"params": {"ef": effort}})
    return time.perf_counter() - start


class Milvus:
    name = "milvus-lite"

    def __init__(self, work):
        from pymilvus import MilvusClient
        self.path = os.path.join(work, "milvus.db")
        self.client = MilvusClient(self.path)

    def ingest(self, base, batch):
        from pymilvus import MilvusClient
        self.client.create_collection("bench", dimension=base.shape[1], metric_type="COSINE")
        started = time.perf_counter()
        for start in range(0, len(base), batch):
            ids = range(start, min(start + batch, len(base)))
            self.client.insert("bench", [{"id": i, "vector": base[i].tolist()} for i in ids])
        self.client.flush("bench")
        return time.perf_counter() - started

    def search_all(self, queries, effort):
        out = []
        for q in queries:
            result = self.client.search("bench", data=[q.tolist()], limit=10, search_params={"params": {"ef": effort}})
            out.append([int(hit["id"]) for hit in result[0]])
        return out

    def qps(self, queries, effort, clients):
        # Milvus Lite allows one client process per database file: concurrent clients share this
        # process's client from threads.
        import concurrent.futures
        rows = [q.tolist() for q in queries]

        def run():
            start = time.perf_counter()
            for q in rows:
                self.client.search("bench", data=[q], limit=10, search_params={"params": {"ef": effort}})
            return time.perf_counter() - start

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            started = time.perf_counter()
            list(pool.map(lambda _: run(), range(clients)))
            elapsed = time.perf_counter() - started
        return clients * len(queries) / elapsed

    def close(self):
        self.client.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/vectron")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--systems", default="vectron,chroma,milvus-lite")
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--qps-queries", type=int, default=1000,
                        help="queries per client in the QPS runs (the recall runs always use all 1,000)")
    parser.add_argument("--qps-queries-for", default="",
                        help="per-system overrides of --qps-queries, e.g. milvus-lite=100 (a slow system's 16 clients)")
    args = parser.parse_args()
    qps_queries = {name: int(count) for name, count in (item.split("=") for item in args.qps_queries_for.split(",") if item)}
    base = read_vecs(os.path.join(DATA, "base.fvecs"), np.float32)[: args.points]
    queries = read_vecs(os.path.join(DATA, "query.fvecs"), np.float32)
    truth = read_vecs(os.path.join(DATA, "groundtruth.ivecs"), np.int32)
    work = tempfile.mkdtemp(prefix="vectron-bench-")
    summary = {}
    try:
        for name in args.systems.split(","):
            system = {"vectron": lambda: Vectron(os.path.abspath(args.binary), work),
                      "chroma": lambda: Chroma(work), "milvus-lite": lambda: Milvus(work)}[name]()
            seconds = system.ingest(base, args.batch)
            entry = {"system": name, "case": "ingest", "points": len(base), "batch": args.batch,
                     "seconds": round(seconds, 2), "points_per_s": round(len(base) / seconds, 1)}
            emit(entry)
            summary[name] = {"ingest_points_per_s": entry["points_per_s"]}
            chosen = None
            for effort in LADDER:
                r = recall(system.search_all(queries, effort), truth)
                emit({"system": name, "case": "recall", "effort": effort, "recall_at_10": r})
                if r >= 0.95:
                    chosen = (effort, r)
                    break
            if chosen is None:
                summary[name]["search"] = "recall 0.95 not reached"
            else:
                summary[name]["effort"], summary[name]["recall_at_10"] = chosen
                for clients in [int(c) for c in args.clients.split(",")]:
                    count = qps_queries.get(name, args.qps_queries)
                    qps = system.qps(queries[:count], chosen[0], clients)
                    emit({"system": name, "case": "search", "clients": clients, "effort": chosen[0],
                          "queries_per_client": count, "qps": round(qps, 1)})
                    summary[name][f"qps_{clients}"] = round(qps, 1)
            system.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit({"summary": summary})


if __name__ == "__main__":
    main()
