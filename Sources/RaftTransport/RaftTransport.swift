// Raft between nodes over the binary RPC. A host's transport closure (`RaftHost.transport`) is
// called with one batch per destination per cycle, from the driver or a sync thread; it must
// not block. `RaftTransport.send` queues the batch in the destination's outbox and returns;
// each peer has at most `callsInFlightMax` calls of `RaftMethods.deliver` in flight, and a call
// takes everything queued when it starts — so messages that pile up while the network is busy
// leave as one frame (batching per destination), and a slow peer costs a bounded outbox, not
// memory without end. Raft tolerates loss: a batch that cannot be sent (the peer is down, the
// outbox is full) is dropped and counted, and the host hears that the peer is unreachable, so
// its groups stop streaming to it optimistically and probe instead.
//
// The receiving side (`RaftTransport.register`) checks that every message of a batch comes from
// the node the connection authenticated as and is addressed to this node, then hands the batch
// to the host's inbox — quick enough to run on the connection's event loop.
//
// Not yet: a snapshot larger than one frame's payload limit is dropped (counted). Sending one in
// chunks (the shard snapshot files of Format/shard.md §6 are built for it) comes with replicated
// shards.

import Basics
import Raft
import RaftStorage
import RPC
import RPCTransport
import Synchronization
import Wire

/// A batch of Raft messages as an RPC payload (Format/raft.md §8).
public struct RaftBatch: RPCMessage, Sendable {
    public var messages: [(group: UInt64, message: Message)]

    public init(_ messages: [(group: UInt64, message: Message)]) { self.messages = messages }

    public func encode(into writer: inout ByteWriter) {
        writer.write(bytes: RaftMessageCodec.encode(messages))
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> RaftBatch {
        RaftBatch(try RaftMessageCodec.decode(Array(try reader.readBytes(reader.remaining, "raft batch"))))
    }
}

public enum RaftMethods {
    /// Delivers a batch to the receiving node's host; answered once it is queued there.
    public static let deliver = RPCMethod<RaftBatch, Empty>(id: 0x0001_0001, name: "raft.deliver")
}

public final class RaftTransport: Sendable {
    public let node: NodeID
    /// Calls of `deliver` in flight per peer.
    public let callsInFlightMax: Int
    /// Messages queued per peer beyond which new ones are dropped.
    public let outboxMessagesMax: Int
    /// Bytes per call (estimated before encoding), below the frame payload limit.
    let callBytesMax: Int
    let timeout: Duration
    let clients: [NodeID: RPCClient]
    let unreachable: @Sendable (NodeID) -> Void

    struct Outbox {
        var queued: [(group: UInt64, message: Message)] = []
        var inFlight = 0
    }

    struct Counters {
        var sentBatches = 0
        var sentMessages = 0
        var droppedMessages = 0
        var failedCalls = 0
    }

    let outboxes: Mutex<[NodeID: Outbox]>
    let counters = Mutex(Counters())

    /// A transport from `node` to `peers` (node id → address). `unreachable` is told when a
    /// batch to a peer could not be delivered (wire it to `RaftHost.reportUnreachable`).
    public init(node: NodeID, clusterID: UInt64, peers: [NodeID: (host: String, port: Int)], callsInFlightMax: Int = 4,
                outboxMessagesMax: Int = 65_536, timeout: Duration = .seconds(5), limits: FrameLimits = FrameLimits(),
                unreachable: @escaping @Sendable (NodeID) -> Void = { _ in }) {
        precondition(callsInFlightMax > 0 && outboxMessagesMax > 0, "bounds must be positive")
        self.node = node
        self.callsInFlightMax = callsInFlightMax
        self.outboxMessagesMax = outboxMessagesMax
        self.callBytesMax = limits.payloadBytesMax / 2
        self.timeout = timeout
        self.unreachable = unreachable
        var clients: [NodeID: RPCClient] = [:]
        for (peer, address) in peers where peer != node {
            let handshake = Handshake(clusterID: clusterID, role: .node, nodeID: node)
            clients[peer] = RPCClient(host: address.host, port: address.port,
                                      configuration: RPCClientConfiguration(handshake: handshake, limits: limits, randomSeed: node))
        }
        self.clients = clients
        outboxes = Mutex(Dictionary(uniqueKeysWithValues: clients.keys.map { ($0, Outbox()) }))
    }

    /// Queues `messages` for `peer` and starts a call if fewer than `callsInFlightMax` are in
    /// flight. Never blocks.
    public func send(to peer: NodeID, _ messages: [(group: UInt64, message: Message)]) {
        guard clients[peer] != nil else {
            counters.withLock { $0.droppedMessages += messages.count }
            return
        }
        let dropped = outboxes.withLock { outboxes -> Int in
            let room = max(0, outboxMessagesMax - outboxes[peer]!.queued.count)
            outboxes[peer]!.queued.append(contentsOf: messages.prefix(room))
            return messages.count - min(room, messages.count)
        }
        if dropped > 0 { counters.withLock { $0.droppedMessages += dropped } }
        pump(peer)
    }

    /// Starts calls to `peer` while there is room and something queued.
    func pump(_ peer: NodeID) {
        while let batch = takeBatch(for: peer) { start(batch, to: peer) }
    }

    /// Takes the next call's messages (at most `callBytesMax`, at least one), reserving a call.
    func takeBatch(for peer: NodeID) -> [(group: UInt64, message: Message)]? {
        outboxes.withLock { outboxes -> [(group: UInt64, message: Message)]? in
            guard var outbox = outboxes[peer], !outbox.queued.isEmpty, outbox.inFlight < callsInFlightMax else { return nil }
            var bytes = 0, count = 0
            for (_, message) in outbox.queued {
                let size = Self.estimatedBytes(message)
                if count > 0 && bytes + size > callBytesMax { break }
                bytes += size
                count += 1
            }
            let batch = Array(outbox.queued.prefix(count))
            outbox.queued.removeFirst(count)
            outbox.inFlight += 1
            outboxes[peer] = outbox
            return batch
        }
    }

    static func estimatedBytes(_ message: Message) -> Int {
        var bytes = 90 + message.context.count
        for entry in message.entries { bytes += 21 + entry.data.count }
        if let snapshot = message.snapshot { bytes += 48 + snapshot.data.count + 8 * snapshot.metadata.membership.members.count }
        return bytes
    }

    func start(_ batch: [(group: UInt64, message: Message)], to peer: NodeID) {
        let call: RPCCall<Empty>
        do throws(RPCError) {
            call = try clients[peer]!.start(RaftMethods.deliver, RaftBatch(batch), options: CallOptions(timeout: timeout))
        } catch {
            finish(peer, delivered: false, messages: batch.count)
            return
        }
        Task {
            var delivered = true
            do throws(RPCError) { _ = try await call.response() } catch { delivered = false }
            finish(peer, delivered: delivered, messages: batch.count)
        }
    }

    func finish(_ peer: NodeID, delivered: Bool, messages: Int) {
        outboxes.withLock { $0[peer]!.inFlight -= 1 }
        counters.withLock {
            if delivered {
                $0.sentBatches += 1
                $0.sentMessages += messages
            } else {
                $0.failedCalls += 1
                $0.droppedMessages += messages
            }
        }
        if !delivered { unreachable(peer) }
        pump(peer)
    }

    public struct Statistics: Sendable, Equatable {
        public var sentBatches: Int
        public var sentMessages: Int
        public var droppedMessages: Int
        public var failedCalls: Int
    }

    public var statistics: Statistics {
        counters.withLock { Statistics(sentBatches: $0.sentBatches, sentMessages: $0.sentMessages,
                                       droppedMessages: $0.droppedMessages, failedCalls: $0.failedCalls) }
    }

    public func shutdown() async {
        for peer in clients.keys.sorted() { await clients[peer]!.shutdown() }
    }

    /// Registers the receiving side: batches from an authenticated node, addressed to `host`'s
    /// node, go to `host`'s inbox.
    public static func register(host: RaftHost, in registry: inout MethodRegistry) {
        let node = host.node
        registry.registerInline(RaftMethods.deliver) { (batch: RaftBatch, context: RPCContext) throws(RPCError) -> Empty in
            guard context.peer.role == .node, context.peer.nodeID != 0 else {
                throw RPCError.permissionDenied("Raft messages come only from cluster nodes")
            }
            for (_, message) in batch.messages where message.from != context.peer.nodeID || message.to != node {
                throw RPCError.invalidArgument("a message from \(message.from) to \(message.to) on a connection from node \(context.peer.nodeID) to node \(node)")
            }
            host.receive(batch.messages)
            return Empty()
        }
    }
}
