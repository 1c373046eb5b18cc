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
// A snapshot message too large for one call goes in chunks (Format/raft.md §9): it is encoded as
// a one-message batch and sent in order, `snapshotChunkBytes` per call of
// `RaftMethods.deliverChunk`, one call at a time and one snapshot at a time per peer, beside the
// ordinary batches (so heartbeats keep flowing during a long transfer). While a group's
// snapshot is on its way — and for one call timeout after it arrived — the leader's retries of
// it are absorbed; a newer one waits its turn, replacing any older one still waiting. When the
// last chunk is answered (the peer's host has the message) or a chunk fails, the host hears how
// it ended and for which snapshot index (`snapshotSent`, wired to `RaftHost.reportSnapshot`),
// so the leader neither waits for a snapshot that was lost nor sends another while one is
// arriving. A failed transfer is reported only after a backoff (100 ms, doubling per failure in
// a row to 10 s), during which retries are absorbed too: a snapshot the peer refuses is not
// re-sent at every heartbeat. Only a network failure (`unavailable`, `deadlineExceeded`) tells
// the host the peer is unreachable. A snapshot over `messageBytesMax` is never encoded: it fails
// at once (with the backoff). Snapshots small enough for one call travel in the ordinary
// batches and are reported the same way.
//
// The receiving side (`RaftTransport.register`) checks that every message comes from the node
// the connection authenticated as and is addressed to this node, then hands it to the host's
// inbox — for batches, on the connection's event loop. Chunks are reassembled per sending node,
// one transfer at a time (a chunk at offset 0 starts a new one and drops any unfinished one): a
// chunk that does not continue the transfer in progress, a transfer larger than
// `messageBytesMax`, or a whole whose XXH3 checksum or decoding fails is refused and the partial
// transfer dropped. Memory held for unfinished transfers is bounded in all by
// `transfersBytesMax` (a new transfer that would pass it is refused, `resourceExhausted`), and a
// transfer idle for `transferIdleTimeout` is dropped.

import Basics
import Checksum
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

/// A piece of a message too large for one call (Format/raft.md §9).
extension RaftMessageChunk: RPCMessage {}

public enum RaftMethods {
    /// Delivers a batch to the receiving node's host; answered once it is queued there.
    public static let deliver = RPCMethod<RaftBatch, Empty>(id: 0x0001_0001, name: "raft.deliver")
    /// Delivers one chunk of a large message; the last one is answered once the whole message
    /// is queued in the receiving node's host.
    public static let deliverChunk = RPCMethod<RaftMessageChunk, Empty>(id: 0x0001_0002, name: "raft.deliverChunk")
}

public final class RaftTransport: Sendable {
    public let node: NodeID
    /// Calls of `deliver` in flight per peer.
    public let callsInFlightMax: Int
    /// Messages queued per peer beyond which new ones are dropped.
    public let outboxMessagesMax: Int
    /// Bytes per call (estimated before encoding), below the frame payload limit. A snapshot
    /// message estimated larger goes in chunks.
    let callBytesMax: Int
    /// Bytes of a snapshot per chunk call.
    let snapshotChunkBytes: Int
    /// Largest message sent in chunks (estimated); a larger snapshot fails without being encoded.
    let messageBytesMax: Int
    let timeout: Duration
    let clients: [NodeID: RPCClient]
    let unreachable: @Sendable (NodeID) -> Void
    let snapshotSent: SnapshotReport

    /// How a snapshot sent to a peer ended: group, peer, snapshot index, whether the peer's node
    /// has it.
    public typealias SnapshotReport = @Sendable (_ group: UInt64, _ peer: NodeID, _ index: UInt64, _ success: Bool) -> Void

    static let backoffFirst = Duration.milliseconds(100)
    static let backoffMax = Duration.seconds(10)

    struct Outbox {
        var queued: [(group: UInt64, message: Message)] = []
        var inFlight = 0
        /// Snapshot messages waiting to go in chunks, at most one per group.
        var snapshots: [(group: UInt64, message: Message)] = []
        /// The group and snapshot index being sent in chunks now (or backing off after failing).
        var sending: (group: UInt64, index: UInt64)?
        /// Per group: the snapshot index last delivered in chunks, and until when retries of it
        /// are absorbed.
        var delivered: [UInt64: (index: UInt64, until: ContinuousClock.Instant)] = [:]
        /// Per group: chunked transfers that failed in a row.
        var failures: [UInt64: Int] = [:]
    }

    struct Counters {
        var sentBatches = 0
        var sentMessages = 0
        var droppedMessages = 0
        var failedCalls = 0
        var sentChunks = 0
        var sentSnapshots = 0
        var failedSnapshots = 0
    }

    let outboxes: Mutex<[NodeID: Outbox]>
    let counters = Mutex(Counters())
    let transfers: Atomic<UInt64>

    /// A transport from `node` to `peers` (node id → address). `unreachable` is told when a
    /// batch to a peer could not be delivered (wire it to `RaftHost.reportUnreachable`);
    /// `snapshotSent` how each snapshot sent to a peer ended (wire it to
    /// `RaftHost.reportSnapshot`).
    public init(node: NodeID, clusterID: UInt64, peers: [NodeID: (host: String, port: Int)], callsInFlightMax: Int = 4,
                outboxMessagesMax: Int = 65_536, snapshotChunkBytes: Int = 1 << 20, messageBytesMax: Int = 1 << 30,
                timeout: Duration = .seconds(5), limits: FrameLimits = FrameLimits(),
                unreachable: @escaping @Sendable (NodeID) -> Void = { _ in },
                snapshotSent: @escaping SnapshotReport = { _, _, _, _ in }) {
        precondition(callsInFlightMax > 0 && outboxMessagesMax > 0 && snapshotChunkBytes > 0, "bounds must be positive")
        // A batch's lengths are u32 (Format/raft.md §8).
        precondition(messageBytesMax > 0 && messageBytesMax <= Int(UInt32.max) - (1 << 16), "messageBytesMax out of range")
        self.node = node
        self.callsInFlightMax = callsInFlightMax
        self.outboxMessagesMax = outboxMessagesMax
        self.callBytesMax = limits.payloadBytesMax / 2
        precondition(callBytesMax > RaftMessageChunk.headerBytes, "the frame payload limit leaves no room for a chunk")
        self.snapshotChunkBytes = min(snapshotChunkBytes, callBytesMax - RaftMessageChunk.headerBytes)
        self.messageBytesMax = messageBytesMax
        self.timeout = timeout
        self.unreachable = unreachable
        self.snapshotSent = snapshotSent
        var clients: [NodeID: RPCClient] = [:]
        for (peer, address) in peers where peer != node {
            let handshake = Handshake(clusterID: clusterID, role: .node, nodeID: node)
            clients[peer] = RPCClient(host: address.host, port: address.port,
                                      configuration: RPCClientConfiguration(handshake: handshake, limits: limits, randomSeed: node))
        }
        self.clients = clients
        outboxes = Mutex(Dictionary(uniqueKeysWithValues: clients.keys.map { ($0, Outbox()) }))
        // Transfer numbers start at a random point, so a restarted sender does not reuse its
        // predecessor's (the receiver also restarts a transfer at every offset-0 chunk).
        transfers = Atomic(UInt64.random(in: 1...(UInt64.max >> 1)))
    }

    /// Queues `messages` for `peer` and starts a call if fewer than `callsInFlightMax` are in
    /// flight. Never blocks.
    public func send(to peer: NodeID, _ messages: [(group: UInt64, message: Message)]) {
        guard clients[peer] != nil else {
            counters.withLock { $0.droppedMessages += messages.count }
            reportSnapshots(in: messages[...], to: peer, success: false)
            return
        }
        var small = messages
        var large: [(group: UInt64, message: Message)] = []
        if messages.contains(where: { $0.message.snapshot != nil }) {
            small = []
            for item in messages {
                if item.message.snapshot != nil && Self.estimatedBytes(item.message) > callBytesMax { large.append(item) } else { small.append(item) }
            }
        }
        let now = ContinuousClock.now
        let dropped = outboxes.withLock { outboxes -> ArraySlice<(group: UInt64, message: Message)> in
            let room = max(0, outboxMessagesMax - outboxes[peer]!.queued.count)
            outboxes[peer]!.queued.append(contentsOf: small.prefix(room))
            for (group, message) in large {
                let index = message.snapshot!.metadata.index
                if let sending = outboxes[peer]!.sending, sending.group == group, sending.index >= index { continue }  // on its way
                if let delivered = outboxes[peer]!.delivered[group], delivered.index >= index, now < delivered.until { continue }
                if let waiting = outboxes[peer]!.snapshots.firstIndex(where: { $0.group == group }) {
                    if outboxes[peer]!.snapshots[waiting].message.snapshot!.metadata.index <= index {
                        outboxes[peer]!.snapshots[waiting] = (group, message)
                    }
                } else {
                    outboxes[peer]!.snapshots.append((group, message))
                }
            }
            return small.dropFirst(room)
        }
        if !dropped.isEmpty {
            counters.withLock { $0.droppedMessages += dropped.count }
            reportSnapshots(in: dropped, to: peer, success: false)
        }
        pump(peer)
        if !large.isEmpty { startTransfer(to: peer) }
    }

    /// Tells the host how the snapshots among `messages` (sent in an ordinary batch) ended.
    func reportSnapshots(in messages: ArraySlice<(group: UInt64, message: Message)>, to peer: NodeID, success: Bool) {
        for (group, message) in messages {
            if let snapshot = message.snapshot { snapshotSent(group, peer, snapshot.metadata.index, success) }
        }
    }

    /// Starts calls to `peer` while there is room and something queued.
    func pump(_ peer: NodeID) {
        while let batch = takeBatch(for: peer) { start(batch, to: peer) }
    }

    /// Takes the next call's messages (at most `callBytesMax`, at least one), reserving a call.
    func takeBatch(for peer: NodeID) -> [(group: UInt64, message: Message)]? {
        outboxes.withLock { outboxes -> [(group: UInt64, message: Message)]? in
            guard let outbox = outboxes[peer], !outbox.queued.isEmpty, outbox.inFlight < callsInFlightMax else { return nil }
            var bytes = 0, count = 0
            for (_, message) in outbox.queued {
                let size = Self.estimatedBytes(message)
                if count > 0 && bytes + size > callBytesMax { break }
                bytes += size
                count += 1
            }
            // In place: a copy of the outbox would copy the whole queue.
            let batch = Array(outboxes[peer]!.queued.prefix(count))
            outboxes[peer]!.queued.removeFirst(count)
            outboxes[peer]!.inFlight += 1
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
            finish(peer, batch, delivered: false)
            return
        }
        Task {
            var delivered = true
            do throws(RPCError) { _ = try await call.response() } catch { delivered = false }
            finish(peer, batch, delivered: delivered)
        }
    }

    func finish(_ peer: NodeID, _ batch: [(group: UInt64, message: Message)], delivered: Bool) {
        outboxes.withLock { $0[peer]!.inFlight -= 1 }
        counters.withLock {
            if delivered {
                $0.sentBatches += 1
                $0.sentMessages += batch.count
            } else {
                $0.failedCalls += 1
                $0.droppedMessages += batch.count
            }
        }
        reportSnapshots(in: batch[...], to: peer, success: delivered)
        if !delivered { unreachable(peer) }
        pump(peer)
    }

    /// How a chunked transfer ended.
    enum TransferOutcome {
        case delivered
        /// The peer refused a chunk, or the message is over `messageBytesMax`.
        case refused
        /// The network failed (`unavailable`, `deadlineExceeded`).
        case unreachable
    }

    /// Starts sending `peer` its next waiting snapshot in chunks, unless one is on its way.
    func startTransfer(to peer: NodeID) {
        let next = outboxes.withLock { outboxes -> (group: UInt64, message: Message)? in
            guard outboxes[peer]!.sending == nil, !outboxes[peer]!.snapshots.isEmpty else { return nil }
            let next = outboxes[peer]!.snapshots.removeFirst()
            outboxes[peer]!.sending = (next.group, next.message.snapshot!.metadata.index)
            return next
        }
        guard let (group, message) = next else { return }
        let index = message.snapshot!.metadata.index
        Task {
            let outcome = Self.estimatedBytes(message) > messageBytesMax ? .refused : await sendInChunks(group, message, to: peer)
            counters.withLock {
                if outcome == .delivered { $0.sentSnapshots += 1 } else { $0.failedSnapshots += 1 }
            }
            if outcome != .delivered {
                // Back off before reporting: retries meanwhile are absorbed as on their way.
                let failures = outboxes.withLock { outboxes -> Int in
                    outboxes[peer]!.failures[group, default: 0] += 1
                    return outboxes[peer]!.failures[group]!
                }
                try? await Task.sleep(for: min(Self.backoffMax, Self.backoffFirst * (1 << min(failures - 1, 16))))
            }
            let until = ContinuousClock.now + timeout
            outboxes.withLock {
                $0[peer]!.sending = nil
                if outcome == .delivered {
                    $0[peer]!.failures[group] = nil
                    $0[peer]!.delivered[group] = (index, until)
                }
            }
            snapshotSent(group, peer, index, outcome == .delivered)
            if outcome == .unreachable { unreachable(peer) }
            startTransfer(to: peer)
        }
    }

    /// Sends `message` as a one-message batch in chunks, one call at a time. Delivered once the
    /// last chunk is answered (the peer's host has the message).
    func sendInChunks(_ group: UInt64, _ message: Message, to peer: NodeID) async -> TransferOutcome {
        let bytes = RaftMessageCodec.encode([(group, message)])
        let checksum = XXH3.hash(bytes)
        let transfer = transfers.wrappingAdd(1, ordering: .relaxed).newValue
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + snapshotChunkBytes)
            let chunk = RaftMessageChunk(transfer: transfer, total: UInt64(bytes.count), offset: UInt64(offset),
                                         checksum: checksum, bytes: Array(bytes[offset..<end]))
            do throws(RPCError) {
                _ = try await clients[peer]!.call(RaftMethods.deliverChunk, chunk, options: CallOptions(timeout: timeout))
            } catch {
                counters.withLock { $0.failedCalls += 1 }
                return [.unavailable, .deadlineExceeded].contains(error.code) ? .unreachable : .refused
            }
            counters.withLock { $0.sentChunks += 1 }
            offset = end
        }
        return .delivered
    }

    public struct Statistics: Sendable, Equatable {
        public var sentBatches: Int
        public var sentMessages: Int
        public var droppedMessages: Int
        public var failedCalls: Int
        /// Calls of `deliverChunk` answered.
        public var sentChunks: Int
        /// Snapshots sent in chunks, whole.
        public var sentSnapshots: Int
        /// Snapshots whose chunked transfer failed.
        public var failedSnapshots: Int
    }

    public var statistics: Statistics {
        counters.withLock {
            Statistics(sentBatches: $0.sentBatches, sentMessages: $0.sentMessages, droppedMessages: $0.droppedMessages,
                       failedCalls: $0.failedCalls, sentChunks: $0.sentChunks, sentSnapshots: $0.sentSnapshots,
                       failedSnapshots: $0.failedSnapshots)
        }
    }

    public func shutdown() async {
        for peer in clients.keys.sorted() { await clients[peer]!.shutdown() }
    }

    /// Registers the receiving side: batches and chunked messages from an authenticated node,
    /// addressed to `host`'s node, go to `host`'s inbox.
    public static func register(host: RaftHost, in registry: inout MethodRegistry, messageBytesMax: Int = 1 << 30,
                                transfersBytesMax: Int = 2 << 30, transferIdleTimeout: Duration = .seconds(60)) {
        register(node: host.node, in: &registry, messageBytesMax: messageBytesMax, transfersBytesMax: transfersBytesMax,
                 transferIdleTimeout: transferIdleTimeout) { host.receive($0) }
    }

    /// Registers the receiving side for node `node`: checked messages go to `deliver`. A
    /// chunked message may be at most `messageBytesMax` bytes encoded; unfinished transfers hold
    /// at most `transfersBytesMax` in all, and one idle for `transferIdleTimeout` is dropped.
    public static func register(node: NodeID, in registry: inout MethodRegistry, messageBytesMax: Int = 1 << 30,
                                transfersBytesMax: Int = 2 << 30, transferIdleTimeout: Duration = .seconds(60),
                                deliver: @escaping @Sendable ([(group: UInt64, message: Message)]) -> Void) {
        registry.registerInline(RaftMethods.deliver) { (batch: RaftBatch, context: RPCContext) throws(RPCError) -> Empty in
            try check(batch.messages, to: node, context)
            deliver(batch.messages)
            return Empty()
        }
        let assembler = ChunkAssembler(bytesMax: messageBytesMax, heldBytesMax: transfersBytesMax, idleTimeout: transferIdleTimeout)
        // Off the event loop: the last chunk checksums and decodes the whole message.
        registry.register(RaftMethods.deliverChunk) { (chunk: RaftMessageChunk, context: RPCContext) async throws(RPCError) -> Empty in
            try check([], to: node, context)
            guard let messages = try assembler.add(chunk, from: context.peer.nodeID) else { return Empty() }
            try check(messages, to: node, context)
            deliver(messages)
            return Empty()
        }
    }

    /// Refuses messages that do not come from the connection's authenticated node or are not
    /// addressed to `node`.
    static func check(_ messages: [(group: UInt64, message: Message)], to node: NodeID, _ context: RPCContext) throws(RPCError) {
        guard context.peer.role == .node, context.peer.nodeID != 0 else {
            throw RPCError.permissionDenied("Raft messages come only from cluster nodes")
        }
        for (_, message) in messages where message.from != context.peer.nodeID || message.to != node {
            throw RPCError.invalidArgument("a message from \(message.from) to \(message.to) on a connection from node \(context.peer.nodeID) to node \(node)")
        }
    }
}

/// Reassembles chunked messages, one transfer per sending node.
final class ChunkAssembler: Sendable {
    struct Transfer {
        var transfer: UInt64
        var total: UInt64
        var checksum: UInt64
        var bytes: [UInt8]
        var lastChunkAt: Duration
    }

    let bytesMax: Int
    let heldBytesMax: Int
    let idleTimeout: Duration
    /// Time since some fixed point (a test may drive it).
    let now: @Sendable () -> Duration
    let transfers = Mutex<[NodeID: Transfer]>([:])

    init(bytesMax: Int, heldBytesMax: Int, idleTimeout: Duration,
         now: @escaping @Sendable () -> Duration = { ContinuousClock.now - ChunkAssembler.epoch }) {
        precondition(bytesMax > 0 && heldBytesMax >= bytesMax, "bounds must be positive, and hold at least one message")
        self.bytesMax = bytesMax
        self.heldBytesMax = heldBytesMax
        self.idleTimeout = idleTimeout
        self.now = now
    }

    static let epoch = ContinuousClock.now

    /// Adds `chunk` from `peer`; returns the decoded batch once the transfer is whole.
    func add(_ chunk: RaftMessageChunk, from peer: NodeID) throws(RPCError) -> [(group: UInt64, message: Message)]? {
        let now = self.now()
        let whole = try transfers.withLock { (transfers: inout [NodeID: Transfer]) throws(RPCError) -> Transfer? in
            transfers = transfers.filter { now - $0.value.lastChunkAt <= idleTimeout }
            guard chunk.total <= UInt64(bytesMax) else {
                transfers[peer] = nil
                throw RPCError.resourceExhausted("a message of \(chunk.total) bytes passes the limit of \(bytesMax)")
            }
            if chunk.offset == 0 {
                transfers[peer] = nil
                let held = transfers.values.reduce(UInt64(0)) { $0 + $1.total }
                guard held + chunk.total <= UInt64(heldBytesMax) else {
                    throw RPCError.resourceExhausted("transfers in progress hold \(held) bytes; \(chunk.total) more would pass \(heldBytesMax)")
                }
                transfers[peer] = Transfer(transfer: chunk.transfer, total: chunk.total, checksum: chunk.checksum, bytes: chunk.bytes,
                                           lastChunkAt: now)
            } else {
                guard var current = transfers.removeValue(forKey: peer), current.transfer == chunk.transfer,
                      current.total == chunk.total, current.checksum == chunk.checksum,
                      UInt64(current.bytes.count) == chunk.offset else {
                    throw RPCError.invalidArgument("chunk at \(chunk.offset) of transfer \(chunk.transfer) does not continue a transfer in progress")
                }
                // A second chunk proves the transfer: room for all of it at once.
                if current.bytes.capacity < Int(current.total) { current.bytes.reserveCapacity(Int(current.total)) }
                current.bytes.append(contentsOf: chunk.bytes)
                current.lastChunkAt = now
                transfers[peer] = current
            }
            guard UInt64(transfers[peer]!.bytes.count) == chunk.total else { return nil }
            return transfers.removeValue(forKey: peer)
        }
        guard let whole else { return nil }
        guard XXH3.hash(whole.bytes) == whole.checksum else {
            throw RPCError.invalidArgument("transfer \(whole.transfer): the checksum of its \(whole.total) bytes does not match")
        }
        do throws(DecodeError) {
            return try RaftMessageCodec.decode(whole.bytes)
        } catch {
            throw RPCError.invalidArgument("transfer \(whole.transfer): \(error)")
        }
    }

    /// Transfers in progress.
    var inProgress: Int { transfers.withLock { $0.count } }
}
