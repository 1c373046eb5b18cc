// One RPC frame as its users see it: the header fields and the payload after decompression.
// `FrameCodec` turns frames into bytes and back (Format/rpc.md).

public struct Frame: Equatable, Sendable, CustomStringConvertible {
    public var kind: FrameKind
    /// `.lz4` asks the encoder to compress the payload; it stores the payload raw (and clears
    /// the flag on the wire) when compression would not make it shorter.
    public var flags: FrameFlags
    public var requestID: UInt64
    /// The method a request calls; 0 for every other kind.
    public var methodID: UInt32
    /// A request's remaining time budget in microseconds when it was sent; 0 means none.
    /// Relative, so the peers' clocks need not agree. 0 for every other kind.
    public var deadlineMicroseconds: UInt64
    public var payload: [UInt8]

    public init(
        kind: FrameKind, flags: FrameFlags = [], requestID: UInt64, methodID: UInt32 = 0,
        deadlineMicroseconds: UInt64 = 0, payload: [UInt8] = []
    ) {
        self.kind = kind
        self.flags = flags
        self.requestID = requestID
        self.methodID = methodID
        self.deadlineMicroseconds = deadlineMicroseconds
        self.payload = payload
    }

    public static func request(id: UInt64, method: UInt32, deadlineMicroseconds: UInt64 = 0, payload: [UInt8], flags: FrameFlags = []) -> Frame {
        Frame(kind: .request, flags: flags, requestID: id, methodID: method, deadlineMicroseconds: deadlineMicroseconds, payload: payload)
    }

    public static func response(id: UInt64, payload: [UInt8], flags: FrameFlags = []) -> Frame {
        Frame(kind: .response, flags: flags, requestID: id, payload: payload)
    }

    /// An error frame; request id 0 is an error about the whole connection.
    public static func error(id: UInt64, _ error: RPCError) -> Frame {
        Frame(kind: .error, requestID: id, payload: error.encoded())
    }

    public var description: String {
        var text = "\(kind) id=\(requestID)"
        if methodID != 0 { text += " method=\(methodID)" }
        if deadlineMicroseconds != 0 { text += " deadline=\(deadlineMicroseconds)µs" }
        if !flags.isEmpty { text += " flags=\(flags.rawValue)" }
        return text + " payload=\(payload.count)B"
    }
}
