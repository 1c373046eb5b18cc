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
            let assembler = ChunkAssembler(bytesMax: messageBytesMax)
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
func sender(to receiver: Receiver, port: Int? = nil) -> (RaftTransport, AsyncStream<SnapshotReport>) {
    let (reports, sink) = AsyncStream.makeStream(of: SnapshotReport.self)
    let transport = RaftTransport(node: 1, clusterID: 7, peers: [2: ("127.0.0.1", port ?? receiver.port)], snapshotChunkBytes: 64 << 10,
                                  timeout: .seconds(10), limits: Receiver.limits,
                                  snapshotSent: { sink.yield(SnapshotReport(group: $0, peer: $1, success: $2)) })
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
        let receiver = try await Receiver.start()
        let (transport, reports) = sender(to: receiver)
        let big = snapshotMessage(index: 1000, bytes: 3 << 20, seed: 1)
        let encoded = RaftMessageCodec.encode([(5, big)]).count
        #expect(encoded > Receiver.limits.payloadBytesMax * 10)
        transport.send(to: 2, [(5, heartbeat(0)), (5, big)])
        for commit in 1...20 { transport.send(to: 2, [(5, heartbeat(UInt64(commit)))]) }

        let delivered = try await receiver.next(22)
        let snapshots = delivered.filter { $0.message.kind == .snapshot }
        #expect(snapshots.count == 1)
        #expect(snapshots.first?.group == 5)
        #expect(snapshots.first?.message == big)
        #expect(delivered.filter { $0.message.kind == .heartbeat }.map(\.message.commit).sorted() == Array(0...20))
        #expect(try await nextReports(reports, 1) == [SnapshotReport(group: 5, peer: 2, success: true)])
        let statistics = transport.statistics
        #expect(statistics.sentSnapshots == 1)
        #expect(statistics.failedSnapshots == 0)
        #expect(statistics.sentChunks == (encoded + (64 << 10) - 1) / (64 << 10))
        #expect(statistics.droppedMessages == 0)
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
        #expect(try await nextReports(reports, 2) == [SnapshotReport(group: 5, peer: 2, success: true),
                                                       SnapshotReport(group: 6, peer: 2, success: true)])

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
        #expect(try await nextReports(reports, 2).allSatisfy { $0 == SnapshotReport(group: 5, peer: 2, success: true) })
        #expect(transport.statistics.sentSnapshots == 4)
        await transport.shutdown()
        await receiver.server.kill()
    }

    @Test func aRefusedOrUndeliverableSnapshotIsReportedFailed() async throws {
        // The peer takes messages of at most 1 MiB: a 3 MiB snapshot is refused part way.
        let receiver = try await Receiver.start(messageBytesMax: 1 << 20)
        let (transport, reports) = sender(to: receiver)
        transport.send(to: 2, [(5, snapshotMessage(index: 1000, bytes: 3 << 20, seed: 5))])
        transport.send(to: 2, [(6, heartbeat(1))])
        #expect(try await nextReports(reports, 1) == [SnapshotReport(group: 5, peer: 2, success: false)])
        let delivered = try await receiver.next(1)
        #expect(delivered.map(\.message.kind) == [.heartbeat])  // the connection still works
        #expect(transport.statistics.failedSnapshots == 1)
        #expect(transport.statistics.sentSnapshots == 0)
        await transport.shutdown()
        await receiver.server.kill()

        // A peer that is gone: the port no longer answers.
        let (gone, goneReports) = sender(to: receiver)
        gone.send(to: 2, [(7, snapshotMessage(index: 10, bytes: 1 << 20, seed: 6))])
        #expect(try await nextReports(goneReports, 1) == [SnapshotReport(group: 7, peer: 2, success: false)])
        await gone.shutdown()
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
