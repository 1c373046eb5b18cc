// Snapshots larger than one frame, sent in chunks over real loopback sockets (Format/raft.md
// §9): a multi-megabyte snapshot arrives whole through a 256 KiB frame limit while heartbeats
// keep flowing beside it; the leader's retries of a snapshot on its way are absorbed and a newer
// one waits its turn; a transfer the peer refuses, or a peer that is gone, is reported failed;
// and the receiver refuses every chunk that does not continue its transfer, a whole that fails
// its checksum or decoding, a message not from the connection's node, and an oversized total.

import Basics
import Checksum
import Raft
import RaftStorage
@testable import RaftTransport
import RPC
import RPCTransport
import Synchronization
import Testing
import Wire

struct SnapshotReport: Sendable, Equatable {
    var group: UInt64
    var peer: NodeID
    var index: UInt64
    var success: Bool
}

/// Holds waiters while closed; opening lets every waiter go on.
final class Gate: Sendable {
    let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func close() { state.withLock { $0.open = false } }
}

/// Node 2's receiving side on a loopback server: what it delivers comes out of `messages`.
struct Receiver {
    let server: RPCServer
    let port: Int
    let messages: AsyncStream<(group: UInt64, message: Message)>

    static let limits = FrameLimits(payloadBytesMax: 256 << 10)

    /// `gate`, if given, holds every chunk call while it is closed (and `entered` hears of each
    /// chunk's offset as it arrives).
    static func start(messageBytesMax: Int = 1 << 30, gate: Gate? = nil,
                      entered: AsyncStream<UInt64>.Continuation? = nil) async throws -> Receiver {
        let (messages, sink) = AsyncStream.makeStream(of: (group: UInt64, message: Message).self)
        var registry = MethodRegistry()
        if let gate {
            let assembler = ChunkAssembler(bytesMax: messageBytesMax, heldBytesMax: messageBytesMax, idleTimeout: .seconds(60))
            registry.register(RaftMethods.deliver) { (batch: RaftBatch, _: RPCContext) async throws(RPCError) -> Empty in
                for item in batch.messages { sink.yield(item) }
                return Empty()
            }
            registry.register(RaftMethods.deliverChunk) { (chunk: RaftMessageChunk, context: RPCContext) async throws(RPCError) -> Empty in
                entered?.yield(chunk.offset)
                await gate.wait()
                for item in try assembler.add(chunk, from: context.peer.nodeID) ?? [] { sink.yield(item) }
                return Empty()
            }
        } else {
            RaftTransport.register(node: 2, in: &registry, messageBytesMax: messageBytesMax) { batch in
                for item in batch { sink.yield(item) }
            }
        }
        let server = RPCServer(configuration: RPCServerConfiguration(clusterID: 7, nodeID: 2, limits: limits), registry: registry)
        let port = try await server.start(port: 0)
        return Receiver(server: server, port: port, messages: messages)
    }

    /// The next `count` messages delivered.
    func next(_ count: Int) async throws -> [(group: UInt64, message: Message)] {
        let messages = self.messages
        return try await within(60, "\(count) messages delivered") {
            var got: [(group: UInt64, message: Message)] = []
            for await item in messages {
                got.append(item)
                if got.count == count { break }
            }
            return got
        }
    }
}

/// A snapshot message from node 1 to node 2 carrying `bytes` of seeded data.
func snapshotMessage(index: UInt64, bytes: Int, seed: UInt64) -> Message {
    var random = SeededRandom(seed: seed)
    var data = [UInt8](repeating: 0, count: bytes)
    data.withUnsafeMutableBytes { raw in
        for offset in stride(from: 0, to: bytes - 7, by: 8) { raw.storeBytes(of: random.next(), toByteOffset: offset, as: UInt64.self) }
    }
    let snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: 3, membership: Membership(voters: [1, 2, 3])), data: data)
    return Message(kind: .snapshot, from: 1, to: 2, term: 3, lastIndex: index + 10, snapshot: snapshot)
}

func heartbeat(_ commit: UInt64) -> Message { Message(kind: .heartbeat, from: 1, to: 2, term: 3, commit: commit) }

/// Node 1's transport to the receiver, reporting snapshots into the returned stream.
func sender(to receiver: Receiver, port: Int? = nil, messageBytesMax: Int = 1 << 30) -> (RaftTransport, AsyncStream<SnapshotReport>) {
    let (reports, sink) = AsyncStream.makeStream(of: SnapshotReport.self)
    let transport = RaftTransport(node: 1, clusterID: 7, peers: [2: ("127.0.0.1", port ?? receiver.port)], snapshotChunkBytes: 64 << 10,
                                  messageBytesMax: messageBytesMax, timeout: .seconds(10), limits: Receiver.limits,
                                  snapshotSent: { sink.yield(SnapshotReport(group: $0, peer: $1, index: $2, success: $3)) })
    return (transport, reports)
}

func nextReports(_ reports: AsyncStream<SnapshotReport>, _ count: Int) async throws -> [SnapshotReport] {
    try await within(60, "\(count) snapshot reports") {
        var got: [SnapshotReport] = []
        for await report in reports {
            got.append(report)
            if got.count == count { break }
        }
        return got
    }
}

@Suite(.serialized) struct ChunkedSnapshotTests {
    @Test func aSnapshotLargerThanAFrameArrivesWholeBesideHeartbeats() async throws {
        let gate = Gate()
        let (entered, enteredSink) = AsyncStream.makeStream(of: UInt64.self)
        let receiver = try await Receiver.start(gate: gate, entered: enteredSink)
        let (transport, reports) = sender(to: receiver)
        let big = snapshotMessage(index: 1000, bytes: 3 << 20, seed: 1)
        let encoded = RaftMessageCodec.encode([(5, big)]).count
        #expect(encoded > Receiver.limits.payloadBytesMax * 10)
        transport.send(to: 2, [(5, heartbeat(0)), (5, big)])
        // The transfer is held at its first chunk; heartbeats go on meanwhile.
        _ = try await within(60, "the first chunk") { for await _ in entered { return true }; return false }
        for commit in 1...20 { transport.send(to: 2, [(5, heartbeat(UInt64(commit)))]) }
        let heartbeats = try await receiver.next(21)
        #expect(heartbeats.map(\.message.kind) == Array(repeating: .heartbeat, count: 21))
        #expect(heartbeats.map(\.message.commit).sorted() == Array(0...20))
        gate.open()

        let delivered = try await receiver.next(1)
        #expect(delivered.first?.group == 5)
        #expect(delivered.first?.message == big)
        #expect(try await nextReports(reports, 1) == [SnapshotReport(group: 5, peer: 2, index: 1000, success: true)])
        let statistics = transport.statistics
        #expect(statistics.sentSnapshots == 1)
        #expect(statistics.failedSnapshots == 0)
        #expect(statistics.sentChunks == (encoded + (64 << 10) - 1) / (64 << 10))
        #expect(statistics.droppedMessages == 0)
        // A retry right after delivery is absorbed; a newer snapshot is not.
        transport.send(to: 2, [(5, big)])
        let newer = snapshotMessage(index: 1001, bytes: 1 << 20, seed: 9)
        transport.send(to: 2, [(5, newer)])
        #expect(try await receiver.next(1).first?.message == newer)
        // (The peer delivers before it answers the last chunk: wait for the sender to hear.)
        #expect(try await nextReports(reports, 1) == [SnapshotReport(group: 5, peer: 2, index: 1001, success: true)])
        #expect(transport.statistics.sentSnapshots == 2)
        await transport.shutdown()
        await receiver.server.kill()
    }

    @Test func retriesOfASnapshotOnItsWayAreAbsorbedAndANewerOneWaits() async throws {
        let gate = Gate()
        let (entered, enteredSink) = AsyncStream.makeStream(of: UInt64.self)
        let receiver = try await Receiver.start(gate: gate, entered: enteredSink)
        let (transport, reports) = sender(to: receiver)
        /// Returns once the `n`th transfer not yet awaited has its first chunk at the receiver.
        func awaitTransferStart(_ n: Int) async throws {
            _ = try await within(60, "transfer \(n) begins") {
                var starts = 0
                for await offset in entered where offset == 0 {
                    starts += 1
                    if starts == n { return true }
                }
                return false
            }
        }
        let five = snapshotMessage(index: 1000, bytes: 1 << 20, seed: 2)
        let six = snapshotMessage(index: 500, bytes: 1 << 20, seed: 3)

        // The leader's retries of the snapshot on its way (after an election timeout each) are
        // absorbed; another group's snapshot waits its turn.
        transport.send(to: 2, [(5, five)])
        try await awaitTransferStart(1)
        transport.send(to: 2, [(5, five)])
        transport.send(to: 2, [(6, six), (5, five)])
        gate.open()
        var delivered = try await receiver.next(2)
        #expect(delivered.map(\.group) == [5, 6])
        #expect(delivered.map(\.message) == [five, six])
        #expect(try await nextReports(reports, 2) == [SnapshotReport(group: 5, peer: 2, index: 1000, success: true),
                                                       SnapshotReport(group: 6, peer: 2, index: 500, success: true)])

        // A newer snapshot waits for the one on its way, and a newer still replaces it.
        gate.close()
        transport.send(to: 2, [(5, snapshotMessage(index: 4000, bytes: 1 << 20, seed: 4))])
        try await awaitTransferStart(2)  // the first is group 6's, from before
        transport.send(to: 2, [(5, snapshotMessage(index: 5000, bytes: 1 << 20, seed: 5))])
        let newest = snapshotMessage(index: 6000, bytes: 1 << 20, seed: 6)
        transport.send(to: 2, [(5, newest)])
        gate.open()
        delivered = try await receiver.next(2)
        #expect(delivered.map(\.message.snapshot?.metadata.index) == [4000, 6000])
        #expect(delivered.last?.message == newest)
        #expect(try await nextReports(reports, 2) == [SnapshotReport(group: 5, peer: 2, index: 4000, success: true),
                                                       SnapshotReport(group: 5, peer: 2, index: 6000, success: true)])
        #expect(transport.statistics.sentSnapshots == 4)
        await transport.shutdown()
        await receiver.server.kill()
    }

    @Test func aRefusedOversizedOrUndeliverableSnapshotIsReportedFailed() async throws {
        // The peer takes messages of at most 1 MiB: a 3 MiB snapshot is refused at its first
        // chunk, reported failed after the backoff, and the connection still works.
        let receiver = try await Receiver.start(messageBytesMax: 1 << 20)
        let (transport, reports) = sender(to: receiver)
        transport.send(to: 2, [(5, snapshotMessage(index: 1000, bytes: 3 << 20, seed: 5))])
        transport.send(to: 2, [(6, heartbeat(1))])
        #expect(try await nextReports(reports, 1) == [SnapshotReport(group: 5, peer: 2, index: 1000, success: false)])
        let delivered = try await receiver.next(1)
        #expect(delivered.map(\.message.kind) == [.heartbeat])
        #expect(transport.statistics.failedSnapshots == 1)
        #expect(transport.statistics.sentSnapshots == 0)
        #expect(transport.statistics.failedCalls == 1)
        await transport.shutdown()

        // Over the sender's own limit: never encoded, no chunk sent, reported failed.
        let (limited, limitedReports) = sender(to: receiver, messageBytesMax: 1 << 20)
        limited.send(to: 2, [(8, snapshotMessage(index: 77, bytes: 2 << 20, seed: 8))])
        #expect(try await nextReports(limitedReports, 1) == [SnapshotReport(group: 8, peer: 2, index: 77, success: false)])
        #expect(limited.statistics.sentChunks == 0 && limited.statistics.failedCalls == 0)
        await limited.shutdown()
        await receiver.server.kill()

        // A peer that is not there (nothing listens on port 1).
        let (gone, goneReports) = sender(to: receiver, port: 1)
        gone.send(to: 2, [(7, snapshotMessage(index: 10, bytes: 1 << 20, seed: 6))])
        gone.send(to: 2, [(7, Message(kind: .snapshot, from: 1, to: 2, term: 3, snapshot: Snapshot(metadata: SnapshotMetadata(index: 11, term: 3))))])
        let goneSeen = try await nextReports(goneReports, 2)
        // The small one went in an ordinary batch: reported too.
        #expect(Set(goneSeen.map(\.index)) == [10, 11] && goneSeen.allSatisfy { !$0.success && $0.group == 7 })
        await gone.shutdown()
    }

    @Test func theAssemblerForgetsIdleTransfersAndBoundsWhatItHolds() throws {
        let clock = Mutex(Duration.zero)
        let assembler = ChunkAssembler(bytesMax: 1000, heldBytesMax: 1500, idleTimeout: .seconds(60), now: { clock.withLock { $0 } })
        func chunk(_ transfer: UInt64, total: UInt64, offset: UInt64 = 0) -> RaftMessageChunk {
            RaftMessageChunk(transfer: transfer, total: total, offset: offset, checksum: 1, bytes: [7])
        }
        #expect(try assembler.add(chunk(1, total: 1000), from: 1) == nil)
        #expect(try assembler.add(chunk(1, total: 1000, offset: 1), from: 1) == nil)
        // A second node's transfer would pass the 1,500 bytes held in all.
        #expect(throws: RPCError.self) { _ = try assembler.add(chunk(2, total: 600), from: 2) }
        #expect(try assembler.add(chunk(2, total: 500), from: 2) == nil)
        #expect(assembler.inProgress == 2)
        // A new transfer from node 1 replaces its old one (its bytes no longer count).
        #expect(try assembler.add(chunk(3, total: 1000), from: 1) == nil)
        #expect(assembler.inProgress == 2)
        // Idle for over a minute: forgotten, and a chunk continuing it is refused.
        clock.withLock { $0 += .seconds(61) }
        #expect(throws: RPCError.self) { _ = try assembler.add(chunk(3, total: 1000, offset: 1), from: 1) }
        #expect(assembler.inProgress == 0)
        #expect(throws: RPCError.self) { _ = try assembler.add(chunk(4, total: 1001), from: 3) }
    }

    @Test func theReceiverRefusesChunksThatDoNotMakeAWholeFromTheConnectionsNode() async throws {
        let receiver = try await Receiver.start(messageBytesMax: 4 << 20)
        let options = CallOptions(timeout: .seconds(10), waitForReady: true)
        let client = RPCClient(host: "127.0.0.1", port: receiver.port,
                               configuration: RPCClientConfiguration(handshake: Handshake(clusterID: 7, role: .node, nodeID: 1),
                                                                     limits: Receiver.limits))
        func send(_ chunk: RaftMessageChunk) async -> RPCError.Code? {
            do throws(RPCError) {
                _ = try await client.call(RaftMethods.deliverChunk, chunk, options: options)
                return nil
            } catch {
                return error.code
            }
        }
        /// `bytes` in two chunks of transfer `transfer`.
        func halves(_ bytes: [UInt8], transfer: UInt64, checksum: UInt64? = nil) -> [RaftMessageChunk] {
            let half = bytes.count / 2
            let sum = checksum ?? XXH3.hash(bytes)
            return [RaftMessageChunk(transfer: transfer, total: UInt64(bytes.count), offset: 0, checksum: sum, bytes: Array(bytes[..<half])),
                    RaftMessageChunk(transfer: transfer, total: UInt64(bytes.count), offset: UInt64(half), checksum: sum, bytes: Array(bytes[half...]))]
        }
        let message = snapshotMessage(index: 50, bytes: 200_000, seed: 7)
        let bytes = RaftMessageCodec.encode([(9, message)])
        let parts = halves(bytes, transfer: 1)

        // A chunk with no transfer begun.
        #expect(await send(parts[1]) == .invalidArgument)
        // A gap: the transfer is dropped, so even the right next chunk is refused after it.
        #expect(await send(parts[0]) == nil)
        var gap = parts[1]
        gap.offset += 1
        gap.bytes.removeFirst()
        #expect(await send(gap) == .invalidArgument)
        #expect(await send(parts[1]) == .invalidArgument)
        // A chunk of another transfer, or with another checksum, does not continue this one.
        #expect(await send(parts[0]) == nil)
        var other = parts[1]
        other.transfer = 2
        #expect(await send(other) == .invalidArgument)
        #expect(await send(parts[0]) == nil)
        other = parts[1]
        other.checksum ^= 1
        #expect(await send(other) == .invalidArgument)
        // A whole whose checksum does not match.
        for chunk in halves(bytes, transfer: 3, checksum: XXH3.hash(bytes) ^ 1) {
            let code = await send(chunk)
            #expect(code == (chunk.offset == 0 ? nil : .invalidArgument))
        }
        // A whole that is not a batch.
        var garbage = bytes
        garbage[0] = 99
        for chunk in halves(garbage, transfer: 4) { _ = await send(chunk) }
        #expect(await send(halves(garbage, transfer: 5)[0]) == nil)
        #expect(await send(halves(garbage, transfer: 5)[1]) == .invalidArgument)
        // A message from node 3 on node 1's connection.
        var forged = message
        forged.from = 3
        let forgedParts = halves(RaftMessageCodec.encode([(9, forged)]), transfer: 6)
        #expect(await send(forgedParts[0]) == nil)
        #expect(await send(forgedParts[1]) == .invalidArgument)
        // A total over the receiver's limit.
        #expect(await send(RaftMessageChunk(transfer: 7, total: 5 << 20, offset: 0, checksum: 0, bytes: [1])) == .resourceExhausted)
        // A client that is not a node may not send chunks at all.
        let outsider = RPCClient(host: "127.0.0.1", port: receiver.port,
                                 configuration: RPCClientConfiguration(handshake: Handshake(clusterID: 7, role: .client)))
        do throws(RPCError) {
            _ = try await outsider.call(RaftMethods.deliverChunk, parts[0], options: options)
            Issue.record("a client's chunk was accepted")
        } catch {
            #expect(error.code == .permissionDenied)
        }

        // Nothing was delivered; a proper transfer still is.
        for chunk in halves(bytes, transfer: 8) { #expect(await send(chunk) == nil) }
        let delivered = try await receiver.next(1)
        #expect(delivered.count == 1 && delivered[0].group == 9 && delivered[0].message == message)
        await client.shutdown()
        await outsider.shutdown()
        await receiver.server.kill()
    }
}
