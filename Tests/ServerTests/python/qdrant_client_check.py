"""Drives a running Vectron server through the official qdrant-client package (REST).

Usage: python3 qdrant_client_check.py URL API_KEY SEED
Exits 0 when every check holds; prints the failing check and exits 1 otherwise. Deterministic for
a seed. Called by Tests/ServerTests (QdrantClientTests), which starts the server.
"""
import math
import random
import sys
import uuid

from qdrant_client import QdrantClient, models


def main() -> int:
    url, api_key, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    client = QdrantClient(url=url, api_key=api_key, prefer_grpc=False, check_compatibility=False, timeout=60)
    name = f"qc_{seed}"
    dim = 16

    if client.collection_exists(name):
        client.delete_collection(name)
    assert client.create_collection(
        collection_name=name,
        vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
        shard_number=2,
    )
    assert client.collection_exists(name)
    info = client.get_collection(name)
    assert info.config.params.vectors.size == dim, info

    def vec():
        return [rng.uniform(-1, 1) for _ in range(dim)]

    colours = ["red", "green", "blue"]
    points = {}
    rows = []
    for i in range(1, 151):
        v = vec()
        payload = {"n": i, "colour": colours[i % 3], "meta": {"even": i % 2 == 0}}
        points[i] = (v, payload)
        rows.append(models.PointStruct(id=i, vector=v, payload=payload))
    client.upsert(collection_name=name, points=rows, wait=True)
    # The column (batch) form, with UUID ids.
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50)]
    vectors = [vec() for _ in ids]
    payloads = [{"n": 1000 + k, "colour": "purple"} for k in range(len(ids))]
    client.upsert(collection_name=name, points=models.Batch(ids=ids, vectors=vectors, payloads=payloads), wait=True)
    for k, pid in enumerate(ids):
        points[pid] = (vectors[k], payloads[k])

    assert client.count(name, exact=True).count == 200
    red = models.Filter(must=[models.FieldCondition(key="colour", match=models.MatchValue(value="red"))])
    assert client.count(name, count_filter=red, exact=True).count == 50

    def cos(a, b):
        na = math.sqrt(sum(x * x for x in a))
        nb = math.sqrt(sum(x * x for x in b))
        return sum(x * y for x, y in zip(a, b)) / (na * nb)

    # Exact search with a filter equals brute force.
    q = vec()
    expected = sorted((pid for pid, (_, p) in points.items() if p.get("colour") == "red"),
                      key=lambda pid: -cos(points[pid][0], q))[:5]
    hits = client.query_points(name, query=q, query_filter=red, limit=5, with_payload=True,
                               search_params=models.SearchParams(exact=True)).points
    assert [h.id for h in hits] == expected, ([h.id for h in hits], expected)
    assert all(h.payload["colour"] == "red" for h in hits)
    assert abs(hits[0].score - cos(points[hits[0].id][0], q)) < 1e-4

    # A range and a nested key, approximate search: every hit passes the filter.
    complex_filter = models.Filter(
        must=[models.FieldCondition(key="n", range=models.Range(gte=10, lt=100))],
        must_not=[models.FieldCondition(key="meta.even", match=models.MatchValue(value=True))],
    )
    hits = client.query_points(name, query=q, query_filter=complex_filter, limit=10).points
    assert len(hits) == 10
    for h in hits:
        n = points[h.id][1]["n"]
        assert 10 <= n < 100 and n % 2 == 1, (h.id, n)

    # Retrieve, with vectors (stored normalised for Cosine).
    got = client.retrieve(name, ids=[1, ids[0]], with_vectors=True)
    assert sorted(str(p.id) for p in got) == sorted([str(1), ids[0]])
    for p in got:
        v = points[p.id][0]
        norm = math.sqrt(sum(x * x for x in v))
        assert all(abs(a - b / norm) < 1e-5 for a, b in zip(p.vector, v))

    # Scroll to the end, every point once.
    seen = []
    offset = None
    while True:
        page, offset = client.scroll(name, limit=17, offset=offset, with_payload=False)
        seen.extend(str(p.id) for p in page)
        if offset is None:
            break
    assert len(seen) == 200 and len(set(seen)) == 200, len(seen)

    # Delete by id and by filter.
    client.delete(name, points_selector=models.PointIdsList(points=[1, 2, ids[0]]), wait=True)
    assert client.count(name, exact=True).count == 197
    client.delete(name, points_selector=models.FilterSelector(filter=models.Filter(
        must=[models.FieldCondition(key="colour", match=models.MatchValue(value="purple"))])), wait=True)
    assert client.count(name, exact=True).count == 148
    assert client.retrieve(name, ids=[1]) == []

    # Payload changes.
    client.set_payload(name, payload={"tag": "x"}, points=[3], wait=True)
    assert client.retrieve(name, ids=[3])[0].payload["tag"] == "x"
    client.overwrite_payload(name, payload={"only": 1}, points=[3], wait=True)
    assert client.retrieve(name, ids=[3])[0].payload == {"only": 1}
    client.delete_payload(name, keys=["only"], points=[3], wait=True)
    assert client.retrieve(name, ids=[3])[0].payload == {}

    assert client.delete_collection(name)
    assert not client.collection_exists(name)
    print("qdrant-client checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as error:
        import traceback
        traceback.print_exc()
        print(f"check failed: {error}")
        sys.exit(1)
