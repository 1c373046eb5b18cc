// The client protocol (Format/client.md): the methods an application calls on a Vectron server's
// binary port — the same operations as the REST API, as RPC methods (Format/rpc.md) with
// binary messages. Method ids are stable: an id is never reused for another meaning.

import RPC

public enum ClientMethods {
    public static let createCollection = RPCMethod<CollectionSpec, CreateCollectionResult>(id: 0x0002_0001, name: "collections.create")
    public static let deleteCollection = RPCMethod<CollectionName, Flag>(id: 0x0002_0002, name: "collections.delete")
    public static let getCollection = RPCMethod<CollectionName, CollectionDescription>(id: 0x0002_0003, name: "collections.get")
    public static let listCollections = RPCMethod<Empty, CollectionNames>(id: 0x0002_0004, name: "collections.list")
    public static let collectionExists = RPCMethod<CollectionName, Flag>(id: 0x0002_0005, name: "collections.exists")

    public static let upsert = RPCMethod<UpsertRequest, UpdateResult>(id: 0x0002_0010, name: "points.upsert")
    public static let retrieve = RPCMethod<RetrieveRequest, PointList>(id: 0x0002_0011, name: "points.retrieve")
    public static let deletePoints = RPCMethod<DeletePointsRequest, UpdateResult>(id: 0x0002_0012, name: "points.delete")
    public static let changePayload = RPCMethod<PayloadChangeRequest, UpdateResult>(id: 0x0002_0013, name: "points.payload")
    public static let search = RPCMethod<SearchRequest, PointList>(id: 0x0002_0014, name: "points.search")
    public static let scroll = RPCMethod<ScrollRequest, ScrollResult>(id: 0x0002_0015, name: "points.scroll")
    public static let count = RPCMethod<CountRequest, CountResult>(id: 0x0002_0016, name: "points.count")

    /// The cluster id a client names in its handshake: the client port serves any client of the
    /// node, whatever cluster it belongs to (Format/client.md §2).
    public static let clusterID: UInt64 = 0
}
