// The transport over real loopback sockets (port 0, seeded data, no sleeps: every wait is for
// an event, with a deadline only as an upper bound).

import Basics
import NIOCore
import NIOPosix
import RPC
import RPCTransport
import Synchronization
import Testing
import Wire

final class OrderLog: Sendable {
    let ids = Mutex<[UInt64]>([])
}

@Suite(.serialized) struct TransportTests {
    /// A registry with the test methods; `observe` sees handler events ("started", "cancelled").
    static func registry(gate: Gate = Gate(), events: Probe<String> = Probe(), completionOrder: OrderLog? = nil) -> MethodRegistry {
        var registry = MethodRegistry()
        registry.registerInline(echoMethod) { request, _ in request }
        registry.register(computeMethod) { request, context in
            for _ in 0..<request.yields { await Task.yield() }
            completionOrder?.ids.withLock { $0.append(context.requestID) }
            return Number(value: request.value &* 3 &+ 1, yields: request.yields)
        }
        registry.register(waitMethod) { (_, _) async throws(RPCError) -> Empty in
            events.send("started")
            if await gate.wait(), !Task.isCancelled { return Empty() }
            events.send("cancelled")
            throw RPCError.cancelled("handler saw cancellation")
        }
        registry.register(leaderMethod) { (_, _) async throws(RPCError) -> Empty in throw RPCError.notLeader(leaderHint: 3, "ask node 3") }
        registry.register(snapshotMethod) { (request, _, writer) async throws(RPCError) -> Void in
            var random = SeededRandom(seed: request.value)
            for index in 0..<Int(request.yields) {
                // Half the chunks compressible, half noise.
                let chunk = index % 2 == 0 ? random.bytes(64 << 10) : [UInt8](repeating: UInt8(index), count: 64 << 10)
                try await writer.send(RawPayload(chunk))
            }
        }
        registry.register(floodMethod) { (request, _, writer) async throws(RPCError) -> Void in
            do throws(RPCError) {
                for _ in 0..<request.value { try await writer.send(RawPayload([UInt8](repeating: 1, count: 64 << 10))) }
            } catch {
                events.send("stream stopped: \(error.code)")
                throw error
            }
        }
        registry.registerInline(bigMethod) { request, _ in RawPayload([UInt8](repeating: 2, count: Int(request.value))) }
        return registry
    }

    @Test func fiveThousandConcurrentRequestsOnOneConnection() async throws {
        let order = OrderLog()
        let (server, port) = try await startServer(Self.registry(completionOrder: order))
        let client = makeClient(port: port)
        var random = SeededRandom(seed: 5000)
        let requests = (0..<5000).map { _ in Number(value: random.next(), yields: UInt8(random.next() % 16)) }
        let calls = try requests.map { request throws(RPCError) in
            try client.start(computeMethod, request, options: CallOptions(timeout: .seconds(60)))
        }
        let answers = try await within(120) {
            try await withThrowingTaskGroup(of: (Int, Number).self) { group in
                for (index, call) in calls.enumerated() {
                    group.addTask { (index, try await call.response()) }
                }
                var answers = [Number?](repeating: nil, count: calls.count)
                for try await (index, answer) in group { answers[index] = answer }
                return answers
            }
        }
        for (request, answer) in zip(requests, answers) {
            #expect(answer == Number(value: request.value &* 3 &+ 1, yields: request.yields))
        }
        let completed = order.ids.withLock { $0 }
        #expect(completed.count == 5000)
        #expect(completed != completed.sorted(), "the server answered in arrival order; the test shows nothing")
        let statistics = await client.statistics()
        #expect(statistics.connections.count == 1)
        #expect(server.connectionCount == 1)
        await client.shutdown()
        await server.shutdown()
    }

    @Test func serverAnswersDeadlineExceededAndCancelsTheHandler() async throws {
        let events = Probe<String>()
        let (server, port) = try await startServer(Self.registry(events: events))
        // A raw connection has no client-side timer: what comes back is the server's doing.
        let raw = try await RawConnection(port: port)
        #expect(try await raw.handshake().kind == .handshakeAccepted)
        try await raw.send(.request(id: 1, method: waitMethod.id, deadlineMicroseconds: 50_000, payload: []))
        #expect(try await events.expectNext() == "started")
        let answer = try await raw.nextFrame()
        #expect(answer.kind == .error && answer.requestID == 1)
        #expect(try RPCError.decode(answer.payload).code == .deadlineExceeded)
        #expect(try await events.expectNext() == "cancelled")
        await server.shutdown()
    }

    @Test func hostileDeadlinesAreBoundedNotTrusted() async throws {
        let (server, port) = try await startServer(Self.registry())
        let raw = try await RawConnection(port: port)
        #expect(try await raw.handshake().kind == .handshakeAccepted)
        try await raw.send(.request(id: 1, method: echoMethod.id, deadlineMicroseconds: .max, payload: [4, 2]))
        try await raw.send(.request(id: 2, method: computeMethod.id, deadlineMicroseconds: .max - 1,
                                    payload: Number(value: 1, yields: 0).encoded()))
        let first = try await raw.nextFrame()
        let second = try await raw.nextFrame()
        let answers = [first, second].sorted { $0.requestID < $1.requestID }
        #expect(answers.map(\.kind) == [.response, .response])
        #expect(answers[0].payload == [4, 2])
        #expect(try Number.decode(answers[1].payload) == Number(value: 4, yields: 0))
        await server.shutdown()
    }

    @Test func callsWaitingForAnUnreachablePeerTimeOutAndFreeTheQueue() async throws {
        // Nothing listens on this port once the listener is closed.
        let (server, port) = try await startServer(Self.registry())
        await server.kill()
        let client = makeClient(port: port) { $0.queuedRequestsMax = 4 }
        for _ in 0..<3 {
            let calls = try (0..<4).map { _ throws(RPCError) in
                try client.start(echoMethod, RawPayload([1]), options: CallOptions(timeout: .milliseconds(30), waitForReady: true))
            }
            for call in calls {
                await #expect(throws: RPCError.self) {
                    do throws(RPCError) { _ = try await call.response() } catch {
                        #expect(error.code == .deadlineExceeded)
                        throw error
                    }
                }
            }
            // Their places in the queue are free again.
            #expect((await client.statistics()).queuedRequests == 0)
        }
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await client.call(echoMethod, RawPayload([1])) } catch {
                #expect(error.code == .unavailable)
                throw error
            }
        }
        await client.shutdown()
    }

    @Test func clientDeadlineFiresWhenTheServerNeverAnswers() async throws {
        let silent = try await ScriptedServer(answerRequests: false, pauseAfterHandshake: false)
        let client = makeClient(port: silent.port)
        client.connect()
        try await awaitEvent(client) { $0 == .connected(slot: 0) }
        let started = ContinuousClock.now
        await #expect(throws: RPCError.self) {
            do throws(RPCError) {
                _ = try await client.call(echoMethod, RawPayload([1, 2, 3]), options: CallOptions(timeout: .milliseconds(100)))
            } catch {
                #expect(error.code == .deadlineExceeded)
                throw error
            }
        }
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        // The server saw the request with its budget, then the cancel for it.
        #expect(try await silent.received.expectNext().kind == .handshake)
        let request = try await silent.received.expectNext()
        #expect(request.kind == .request && request.deadlineMicroseconds > 0 && request.deadlineMicroseconds <= 100_000)
        let cancel = try await silent.received.expectNext()
        #expect(cancel.kind == .cancel && cancel.requestID == request.requestID)
        await client.shutdown()
        await silent.close()
    }

    @Test func cancellingACallStopsTheServerHandler() async throws {
        let events = Probe<String>()
        let (server, port) = try await startServer(Self.registry(events: events))
        let client = makeClient(port: port)
        let call = try client.start(waitMethod, Empty())
        #expect(try await events.expectNext() == "started")
        call.cancel()
        await #expect(throws: RPCError.cancelled("cancelled by the caller")) { try await call.response() }
        #expect(try await events.expectNext() == "cancelled")
        // Task cancellation works the same way.
        let task = Task { () async throws(RPCError) -> Empty in try await client.call(waitMethod, Empty()) }
        #expect(try await events.expectNext() == "started")
        task.cancel()
        await #expect(throws: RPCError.self) { try await task.value }
        #expect(try await events.expectNext() == "cancelled")
        await client.shutdown()
        await server.shutdown()
    }

    @Test func killedServerIsUnavailableAndTheClientReconnects() async throws {
        let (server, port) = try await startServer(Self.registry())
        let client = makeClient(port: port)
        #expect(try await client.call(echoMethod, RawPayload([1])) == RawPayload([1]))
        await server.kill()
        try await awaitEvent(client) { if case .disconnected = $0 { return true } else { return false } }
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await client.call(echoMethod, RawPayload([2])) } catch {
                #expect(error.code == .unavailable)
                throw error
            }
        }
        let (restarted, samePort) = try await startServer(Self.registry(), port: port)
        #expect(samePort == port)
        let answer = try await client.call(echoMethod, RawPayload([3]), options: CallOptions(timeout: .seconds(10), waitForReady: true))
        #expect(answer == RawPayload([3]))
        await client.shutdown()
        await restarted.shutdown()
    }

    @Test func badFramesCloseOnlyTheirConnection() async throws {
        let (server, port) = try await startServer(Self.registry()) { $0.limits = FrameLimits(payloadBytesMax: 1 << 20) }
        let client = makeClient(port: port)
        #expect(try await client.call(echoMethod, RawPayload([1])) == RawPayload([1]))

        // Garbage: refused at the first byte, with the field and offset named.
        let garbage = try await RawConnection(port: port)
        try await garbage.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        let refusal = try await garbage.nextFrame()
        let garbageError = try RPCError.decode(refusal.payload)
        #expect(refusal.kind == .error && refusal.requestID == 0 && garbageError.code == .invalidArgument)
        #expect(garbageError.message.contains("magic at byte 0"))
        try await garbage.expectClosed()

        // Oversized: refused from the header alone, after the handshake.
        let oversized = try await RawConnection(port: port)
        #expect(try await oversized.handshake().kind == .handshakeAccepted)
        var header = FrameCodec.encode(.request(id: 1, method: echoMethod.id, payload: []))
        header.removeLast(FrameFormat.trailerBytes)
        withUnsafeBytes(of: UInt32(64 << 20).littleEndian) { for i in 0..<4 { header[20 + i] = $0[i]; header[24 + i] = $0[i] } }
        try await oversized.send(header)
        let tooLarge = try RPCError.decode(try await oversized.nextFrame().payload)
        #expect(tooLarge.code == .resourceExhausted && tooLarge.message.contains("stored length"))
        try await oversized.expectClosed()

        // Before the handshake, a frame larger than a handshake can be is refused from its
        // header: an unauthenticated peer cannot make the server buffer a large frame.
        let bigHello = try await RawConnection(port: port)
        var helloHeader = FrameCodec.encode(Frame(kind: .handshake, requestID: 0, payload: []))
        helloHeader.removeLast(FrameFormat.trailerBytes)
        let helloLength = UInt32(FrameFormat.handshakeBytesMax + 1)
        withUnsafeBytes(of: helloLength.littleEndian) { for i in 0..<4 { helloHeader[20 + i] = $0[i]; helloHeader[24 + i] = $0[i] } }
        try await bigHello.send(helloHeader)
        let helloRefused = try RPCError.decode(try await bigHello.nextFrame().payload)
        #expect(helloRefused.code == .resourceExhausted && helloRefused.message.contains("stored length"), "\(helloRefused)")
        try await bigHello.expectClosed()

        // A request before the handshake.
        let early = try await RawConnection(port: port)
        try await early.send(.request(id: 1, method: echoMethod.id, payload: []))
        #expect(try RPCError.decode(try await early.nextFrame().payload).code == .unauthenticated)
        try await early.expectClosed()

        // The well-behaved connection never noticed.
        for value in UInt8(2)...UInt8(20) {
            #expect(try await client.call(echoMethod, RawPayload([value])) == RawPayload([value]))
        }
        #expect((await client.statistics()).connections.count == 1)
        await client.shutdown()
        await server.shutdown()
    }

    /// Connections beyond `connectionsMax` are closed as they arrive.
    @Test func connectionsBeyondTheCapAreClosed() async throws {
        let (server, port) = try await startServer(Self.registry()) { $0.connectionsMax = 2 }
        let first = try await RawConnection(port: port)
        #expect(try await first.handshake().kind == .handshakeAccepted)
        let second = try await RawConnection(port: port)
        #expect(try await second.handshake().kind == .handshakeAccepted)
        let third = try await RawConnection(port: port)
        try await third.expectClosed()
        #expect(server.connectionCount == 2)
        // The two admitted connections still work.
        try await first.send(.request(id: 1, method: echoMethod.id, payload: [7]))
        #expect(try await first.nextFrame().payload == [7])
        await server.shutdown()
    }

    @Test func aPeerThatStopsReadingCausesBackpressureWithBoundedMemory() async throws {
        let peer = try await ScriptedServer(answerRequests: true, pauseAfterHandshake: true, receiveBufferBytes: 64 << 10)
        let queuedBytesMax = 1 << 20
        let highWatermark = 64 << 10
        let payloadBytes = 32 << 10
        let client = makeClient(port: peer.port) {
            $0.queuedBytesMax = queuedBytesMax
            $0.writeBufferLowWatermark = 16 << 10
            $0.writeBufferHighWatermark = highWatermark
            $0.keepaliveInterval = nil
        }
        // The stated bound on what this side buffers: NIO's high watermark plus one frame (the
        // write that crossed it), plus the queue budget.
        let frameBytes = payloadBytes + FrameFormat.overheadBytes
        let bufferedBytesBound = highWatermark + frameBytes + queuedBytesMax

        client.connect()
        try await awaitEvent(client) { $0 == .connected(slot: 0) }
        var calls: [(UInt8, RPCCall<RawPayload>)] = []
        var exhausted = false
        var sawUnwritable = false
        var largestBuffered = 0
        for index in 0..<4000 {
            let fill = UInt8(truncatingIfNeeded: index)
            do throws(RPCError) {
                calls.append((fill, try client.start(echoMethod, RawPayload([UInt8](repeating: fill, count: payloadBytes)),
                                                       options: CallOptions(timeout: .seconds(60), waitForReady: true))))
            } catch {
                #expect(error.code == .resourceExhausted)
                exhausted = true
                break
            }
            let statistics = await client.statistics()
            #expect(statistics.queuedBytes <= queuedBytesMax)
            for connection in statistics.connections {
                sawUnwritable = sawUnwritable || !connection.isWritable
                #expect(connection.bufferedWritableBytes <= highWatermark + frameBytes)
                largestBuffered = max(largestBuffered, connection.bufferedWritableBytes + connection.blockedBytes)
            }
        }
        #expect(exhausted, "the queue never filled")
        #expect(sawUnwritable, "the channel never became unwritable")
        #expect(largestBuffered <= bufferedBytesBound)
        #expect(largestBuffered >= queuedBytesMax / 2, "the queue barely filled: \(largestBuffered) bytes")

        // The peer reads again: every admitted call is answered.
        try await peer.resumeReading()
        let admitted = calls
        try await within(60) {
            for (fill, call) in admitted {
                let answer = try await call.response()
                #expect(answer.bytes.count == payloadBytes && answer.bytes.allSatisfy { $0 == fill })
            }
        }
        let drained = await client.statistics()
        #expect(drained.queuedBytes == 0 && drained.queuedRequests == 0)
        await client.shutdown()
        await peer.close()
    }

    @Test func callsNeverSentSurviveTheLossOfTheirConnection() async throws {
        let stuck = try await ScriptedServer(answerRequests: false, pauseAfterHandshake: true, receiveBufferBytes: 64 << 10)
        let port = stuck.port
        let client = makeClient(port: port) {
            $0.writeBufferLowWatermark = 16 << 10
            $0.writeBufferHighWatermark = 64 << 10
            $0.keepaliveInterval = nil
        }
        client.connect()
        try await awaitEvent(client) { $0 == .connected(slot: 0) }
        // Fill the socket until calls queue up unsent behind the unwritable channel.
        var calls: [RPCCall<RawPayload>] = []
        var statistics = await client.statistics()
        for index in 0..<4000 where (statistics.connections.first?.blockedRequests ?? 0) < 8 {
            calls.append(try client.start(echoMethod, RawPayload([UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 32 << 10)),
                                          options: CallOptions(timeout: .seconds(60), waitForReady: true)))
            statistics = await client.statistics()
        }
        let blocked = try #require(statistics.connections.first).blockedRequests
        let inFlight = try #require(statistics.connections.first).inFlightRequests
        #expect(blocked >= 8 && blocked + inFlight == calls.count)
        // The connection dies; a server that answers takes the port.
        await stuck.close()
        let answering = try await ScriptedServer(answerRequests: true, pauseAfterHandshake: false, port: port)
        let admitted = calls
        let outcomes = try await within(60) {
            var answered = 0
            var unavailable = 0
            for call in admitted {
                do throws(RPCError) {
                    _ = try await call.response()
                    answered += 1
                } catch {
                    #expect(error.code == .unavailable)
                    unavailable += 1
                }
            }
            return (answered, unavailable)
        }
        // Sent calls may have run: they fail. Unsent ones went out on the new connection.
        #expect(outcomes.0 == blocked && outcomes.1 == inFlight)
        await client.shutdown()
        await answering.close()
    }

    @Test func aClientThatStopsReadingStopsTheServerReading() async throws {
        let highWatermark = 256 << 10
        let answerBytes = 64 << 10
        let (server, port) = try await startServer(Self.registry()) { $0.writeBufferHighWatermark = highWatermark }
        let raw = try await RawConnection(port: port)
        #expect(try await raw.handshake().kind == .handshakeAccepted)
        try await raw.channel.setOption(.autoRead, value: false).get()
        // The stated bound: the high watermark plus the one answer that crossed it.
        let bound = highWatermark + answerBytes + FrameFormat.overheadBytes
        var sent: UInt64 = 0
        var paused = false
        for _ in 0..<1000 where !paused {
            var batch: [UInt8] = []
            for _ in 0..<16 {
                sent += 1
                FrameCodec.encode(.request(id: sent, method: bigMethod.id, payload: Number(value: UInt64(answerBytes), yields: 0).encoded()), into: &batch)
            }
            raw.channel.writeAndFlush(raw.channel.allocator.buffer(bytes: batch), promise: nil)
            for connection in await server.statistics() {
                #expect(connection.bufferedWritableBytes <= bound)
                paused = paused || connection.readsPaused
            }
        }
        #expect(paused, "the server never stopped reading")
        // The client reads again: every request is answered.
        try await raw.channel.setOption(.autoRead, value: true).get()
        raw.channel.read()
        let total = sent
        let answered = try await within(60) {
            var answered = Set<UInt64>()
            for _ in 0..<total {
                let frame = try await raw.nextFrame()
                #expect(frame.kind == .response && frame.payload.count == answerBytes)
                answered.insert(frame.requestID)
            }
            return answered
        }
        #expect(answered.count == Int(sent))
        await server.shutdown()
    }

    @Test func handshakeMismatchesAreRefused() async throws {
        let keys = ["alice": Array("alice-key".utf8)]
        let (server, port) = try await startServer(Self.registry(), authenticator: .apiKeys(keys))

        let otherCluster = makeClient(port: port) { $0.handshake = Handshake(clusterID: 99, role: .client, credential: .apiKey(keys["alice"]!)) }
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await otherCluster.call(echoMethod, RawPayload([1])) } catch {
                #expect(error.code == .permissionDenied)
                throw error
            }
        }
        let badKey = makeClient(port: port) { $0.handshake = Handshake(clusterID: testClusterID, role: .client, credential: .apiKey([1, 2])) }
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await badKey.call(echoMethod, RawPayload([1])) } catch {
                #expect(error.code == .unauthenticated)
                throw error
            }
        }
        let raw = try await RawConnection(port: port)
        try await raw.send(Frame(kind: .handshake, requestID: 0, payload: Handshake(
            protocolVersion: 2, clusterID: testClusterID, role: .client, credential: .apiKey(keys["alice"]!)).encoded()))
        let refusal = try RPCError.decode(try await raw.nextFrame().payload)
        #expect(refusal.code == .invalidArgument && refusal.message.contains("protocol version"))
        try await raw.expectClosed()

        let alice = makeClient(port: port) { $0.handshake = Handshake(clusterID: testClusterID, role: .client, credential: .apiKey(keys["alice"]!)) }
        #expect(try await alice.call(echoMethod, RawPayload([7])) == RawPayload([7]))
        for client in [otherCluster, badKey, alice] { await client.shutdown() }
        await server.shutdown()
    }

    @Test func streamingResponsesAreReassembled() async throws {
        let (server, port) = try await startServer(Self.registry()) { $0.compressionBytesMin = 1024 }
        let client = makeClient(port: port)
        let stream = try client.stream(snapshotMethod, Number(value: 77, yields: 64), options: CallOptions(timeout: .seconds(60)))
        let chunks = try await stream.collect()
        var random = SeededRandom(seed: 77)
        var expected: [UInt8] = []
        for index in 0..<64 {
            expected += index % 2 == 0 ? random.bytes(64 << 10) : [UInt8](repeating: UInt8(index), count: 64 << 10)
        }
        #expect(chunks.count == 64)
        #expect(chunks.flatMap(\.bytes) == expected)
        await client.shutdown()
        await server.shutdown()
    }

    @Test func errorsKeepTheirCodesAndDetails() async throws {
        let (server, port) = try await startServer(Self.registry())
        let client = makeClient(port: port)
        await #expect(throws: RPCError.notLeader(leaderHint: 3, "ask node 3")) { try await client.call(leaderMethod, Empty()) }
        let unknown = RPCMethod<Empty, Empty>(id: 999, name: "unknown")
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await client.call(unknown, Empty()) } catch {
                #expect(error.code == .notFound)
                throw error
            }
        }
        // A request the handler cannot decode.
        let malformed = RPCMethod<RawPayload, Empty>(id: computeMethod.id, name: "compute with a bad payload")
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await client.call(malformed, RawPayload([1, 2])) } catch {
                #expect(error.code == .invalidArgument)
                throw error
            }
        }
        await client.shutdown()
        await server.shutdown()
    }

    @Test func limitsAreAnsweredResourceExhaustedWithoutBreakingTheConnection() async throws {
        let events = Probe<String>()
        let (server, port) = try await startServer(Self.registry(events: events)) {
            $0.concurrentRequestsMax = 2
            $0.limits = FrameLimits(payloadBytesMax: 4096)
        }
        let client = makeClient(port: port) { $0.limits = FrameLimits(payloadBytesMax: 8192) }
        func expectExhausted(_ body: () async throws(RPCError) -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
            do throws(RPCError) {
                try await body()
                Issue.record("no error", sourceLocation: sourceLocation)
            } catch {
                #expect(error.code == .resourceExhausted, "\(error)", sourceLocation: sourceLocation)
            }
        }
        // Requests running per connection.
        let first = try client.start(waitMethod, Empty(), options: CallOptions(timeout: .seconds(30)))
        let second = try client.start(waitMethod, Empty(), options: CallOptions(timeout: .seconds(30)))
        #expect(try await events.expectNext() == "started")
        #expect(try await events.expectNext() == "started")
        await expectExhausted { () async throws(RPCError) in _ = try await client.call(waitMethod, Empty()) }
        first.cancel()
        second.cancel()
        #expect(try await events.expectNext() == "cancelled")
        #expect(try await events.expectNext() == "cancelled")
        // A request over the server's limit is refused by the client; the server never sees it.
        await expectExhausted { () async throws(RPCError) in _ = try await client.call(echoMethod, RawPayload([UInt8](repeating: 0, count: 5000))) }
        // A response over the client's limit is refused by the server.
        await expectExhausted { () async throws(RPCError) in _ = try await client.call(bigMethod, Number(value: 9000, yields: 0)) }
        // And the connection still works.
        #expect(try await client.call(bigMethod, Number(value: 8000, yields: 0)).bytes.count == 8000)
        #expect((await client.statistics()).connections.count == 1)
        await client.shutdown()
        await server.shutdown()
    }

    @Test func aStreamNobodyReadsIsCancelledAtItsBufferBound() async throws {
        let events = Probe<String>()
        let (server, port) = try await startServer(Self.registry(events: events))
        let client = makeClient(port: port) { $0.streamBufferBytesMax = 100 << 10 }
        let stream = try client.stream(floodMethod, Number(value: 1000, yields: 0), options: CallOptions(timeout: .seconds(30)))
        // Nobody reads: the client stops the stream at its bound, and the server's writer fails.
        #expect(try await events.expectNext() == "stream stopped: cancelled")
        var received = 0
        do throws(RPCError) {
            while try await stream.next() != nil { received += 1 }
            Issue.record("the stream ended normally")
        } catch {
            #expect(error.code == .resourceExhausted)
        }
        #expect(received >= 1 && received <= 2)
        #expect(try await client.call(echoMethod, RawPayload([5])) == RawPayload([5]))
        await client.shutdown()
        await server.shutdown()
    }

    @Test func gracefulShutdownDrainsRequestsInFlight() async throws {
        let gate = Gate()
        let events = Probe<String>()
        let (server, port) = try await startServer(Self.registry(gate: gate, events: events))
        let client = makeClient(port: port)
        let running = try client.start(waitMethod, Empty(), options: CallOptions(timeout: .seconds(30)))
        #expect(try await events.expectNext() == "started")
        let shutdown = Task { await server.shutdown(gracePeriod: .seconds(30)) }
        // The server says it is going away; new calls are refused, the running one is not.
        try await awaitEvent(client) { if case .draining = $0 { return true } else { return false } }
        await #expect(throws: RPCError.self) {
            do throws(RPCError) { _ = try await client.call(echoMethod, RawPayload([1])) } catch {
                #expect(error.code == .unavailable)
                throw error
            }
        }
        gate.open()
        #expect(try await running.response() == Empty())
        try await within(30) { await shutdown.value }
        #expect(server.connectionCount == 0)
        await client.shutdown()
    }

    @Test func keepalivePingsAreAnswered() async throws {
        let (server, port) = try await startServer(Self.registry())
        let client = makeClient(port: port) { $0.keepaliveInterval = .milliseconds(20) }
        #expect(try await client.call(echoMethod, RawPayload([1])) == RawPayload([1]))
        try await awaitEvent(client) { $0 == .pong(slot: 0) }
        await client.shutdown()
        await server.shutdown()
    }

    @Test func aPeerThatStopsAnsweringPingsIsDisconnected() async throws {
        let silent = try await ScriptedServer(answerRequests: true, pauseAfterHandshake: false)
        let client = makeClient(port: silent.port) {
            $0.keepaliveInterval = .milliseconds(20)
            $0.keepaliveTimeout = .milliseconds(50)
        }
        #expect(try await client.call(echoMethod, RawPayload([1])) == RawPayload([1]))
        try await awaitEvent(client) {
            if case .disconnected(_, let error) = $0 { return error.message.contains("keepalive") }
            return false
        }
        await client.shutdown()
        await silent.close()
    }

    @Test func connectionPoolSpreadsCalls() async throws {
        let (server, port) = try await startServer(Self.registry())
        let client = makeClient(port: port) { $0.connectionsPerPeer = 3 }
        let connected = Task {
            var slots = Set<Int>()
            for await event in client.events {
                if case .connected(let slot) = event { slots.insert(slot) }
                if slots.count == 3 { break }
            }
            return slots
        }
        for value in 0..<30 {
            let answer = try await client.call(computeMethod, Number(value: UInt64(value), yields: 0),
                                               options: CallOptions(timeout: .seconds(10), waitForReady: true))
            #expect(answer.value == UInt64(value) * 3 + 1)
        }
        #expect(try await within(10) { await connected.value } == [0, 1, 2])
        #expect(server.connectionCount == 3)
        #expect((await client.statistics()).connections.count == 3)
        await client.shutdown()
        await server.shutdown()
    }
}
