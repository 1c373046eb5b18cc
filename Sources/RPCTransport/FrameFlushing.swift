// Write coalescing shared by the client's and the server's connection handlers: frames are
// written as they come and flushed once per read burst or event-loop tick, so that answers (or
// requests) finishing together share one syscall.

import NIOCore
import RPC

protocol FrameFlushing: AnyObject, _EmittingChannelHandler where OutboundOut == Frame {
    var context: ChannelHandlerContext? { get }
    /// Inside `channelRead` … `channelReadComplete`: the flush comes at the end of the burst.
    var inReadBurst: Bool { get }
    var flushPending: Bool { get set }
    var flushScheduled: Bool { get set }
}

extension FrameFlushing {
    func write(_ frame: Frame) {
        guard let context else { return }
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        flushPending = true
    }

    func flushIfPending() {
        guard flushPending, let context else { return }
        flushPending = false
        context.flush()
    }

    /// Flushes once at the end of this event-loop tick (or of the current read burst).
    func scheduleFlush() {
        guard !inReadBurst, !flushScheduled, let context else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            bound.value.flushScheduled = false
            bound.value.flushIfPending()
        }
    }
}
